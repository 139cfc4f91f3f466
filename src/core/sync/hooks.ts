/**
 * Change hooks: each hook whose outputs changed runs once per run, in layout order, after every
 * write of the run is committed. argv without a shell unless asked; a timeout with SIGTERM, then
 * SIGKILL, to its process group; done when its process exits (a background process it leaves
 * holding stdout/stderr is not waited for); output logged through the redactor; the changed
 * files in its environment. Pending hooks are persisted in state, so a change is never silently
 * unnotified.
 */
import type { Env } from "../layout/load.js";
import type { HookSpec } from "../layout/schema.js";
import type { Logger } from "../support/log.js";
import { parseDuration } from "../support/duration.js";
import { cutText } from "../support/redact.js";
import type { BoundedText, Redactor } from "../support/redact.js";
import type { Clock } from "../support/clock.js";
import { systemClock } from "../support/clock.js";
import { childEnv, describeEnd, runCommand } from "../support/command.js";

export interface HookRun {
  name: string;
  ok: boolean;
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  error?: string;
}

const MAX_CAPTURE = 64 * 1024;
const MAX_LINE = 500;

/**
 * The hook's output as log lines: redacted as a whole first (a multi-line secret is matched whole;
 * a secret cut off by the capture limit loses its visible prefix too), then split and each line
 * cut without splitting a character.
 */
export function hookOutputLines(captured: BoundedText, redactor: Redactor | undefined): string[] {
  const text = !redactor ? captured.text : captured.truncated ? redactor.redactCutOff(captured.text) : redactor.redact(captured.text);
  return text
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => cutText(l, MAX_LINE));
}

export async function runHook(name: string, spec: HookSpec, files: string[], opts: { env: Env; cwd: string; log: Logger; redactor?: Redactor; clock?: Clock }): Promise<HookRun> {
  const timeoutMs = spec.timeout ? parseDuration(spec.timeout) : 60_000;
  const argv = spec.shell ? ["/bin/sh", "-c", spec.command as string] : (spec.command as string[]);
  const env = childEnv(opts.env, { VAULT_RENDER_HOOK: name, VAULT_RENDER_CHANGED_FILES: files.join("\n") });
  const { output, ...r } = await runCommand({ argv, env, cwd: opts.cwd, timeoutMs, clock: opts.clock ?? systemClock, maxCapture: MAX_CAPTURE });
  for (const line of hookOutputLines(output, opts.redactor)) opts.log.info({ hook: name }, `hook ${name}: ${line}`);
  return { name, ...r };
}

export function describeHookFailure(r: HookRun, spec: HookSpec): string {
  return `hook ${r.name} ${describeEnd(r, spec.timeout ?? "60s")}`;
}
