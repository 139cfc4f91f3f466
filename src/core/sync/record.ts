/** How a step records an output's failure in the state (`status` shows it). */
import { SourceUnavailable, VrError, describeError } from "../support/errors.js";
import type { RunContext } from "../run/context.js";

/** The code of a failure: the source's own when it is a source's failure. */
export function errorCode(e: Error | undefined): string {
  const inner = e instanceof SourceUnavailable ? e.error : e;
  return inner instanceof VrError ? inner.code : "ERROR";
}

export function recordFailure(run: RunContext, id: string, e: Error): void {
  if (run.opts.dryRun) return;
  // Redacted before it is stored: `status` prints it (cut) with no redactor of its own.
  const rec = { code: errorCode(e), message: run.opts.redactor.redact(describeError(e)), at: new Date(run.opts.clock.now()).toISOString() };
  const prev = run.state.outputs[id];
  if (prev) prev.lastError = rec;
  else run.state.failures[id] = rec;
}
