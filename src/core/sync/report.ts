/** The end of a pass: its exit code, the summary (printed for a dry run, logged and recorded otherwise). */
import { ExitCode, SourceUnavailable, VrError, describeError } from "../support/errors.js";
import type { RunContext } from "../run/context.js";
import { VaultRequestError } from "../vault/client.js";
import { tokenMaxTtlWarning } from "../vault/token-horizon.js";
import { errorCode } from "./record.js";
import type { OutputResult, SyncResult } from "./result.js";
import { changedAction, describePlan } from "./result.js";

/** A write refused by the local filesystem (full, read-only, not writable, I/O error). */
function localWriteFailure(e: Error | undefined): boolean {
  const errno = e instanceof VrError && e.code === "WRITE" ? (e.cause as NodeJS.ErrnoException | undefined)?.code : undefined;
  return errno !== undefined && ["ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EIO"].includes(errno);
}

/** 0 when all is in place; 3 when only Vault's unavailability failed outputs and nothing changed; 5 when only public/ refused; else 1. */
function exitOf(failed: OutputResult[], changed: OutputResult[], hookFailures: string[]): ExitCode {
  let exit: ExitCode = ExitCode.Ok;
  if (failed.length) {
    const allUnavailable = failed.every((r) => {
      const e = r.error instanceof SourceUnavailable ? r.error.error : r.error;
      return e instanceof VaultRequestError && e.unavailable;
    });
    exit = allUnavailable && changed.length === 0 ? ExitCode.Unavailable : ExitCode.Failed;
    // Nothing written and every failure was public/ refusing the write (full, read-only, not writable).
    if (exit === ExitCode.Failed && changed.length === 0 && failed.every((r) => !r.afterChange && localWriteFailure(r.error))) exit = ExitCode.Environment;
  }
  if (hookFailures.length && exit === ExitCode.Ok) exit = ExitCode.Failed;
  return exit;
}

/** `at`: when the pass's hooks started (its recorded time). `plan`: the dry run's lines before the results (lease notes) and after them (hooks). */
export async function report(run: RunContext, at: string, results: OutputResult[], hookFailures: string[], plan: { before: string[]; after: string[] }): Promise<SyncResult> {
  const { opts, state } = run;
  const { log } = opts;
  // Shown with -v (not in every cron mail): a layout whose leases outlive the token's max TTL.
  const maxTtlWarning = tokenMaxTtlWarning(run.layout, state);
  if (maxTtlWarning && log.isLevelEnabled("info")) log.warn(maxTtlWarning);

  const failed = results.filter((r) => r.action === "failed");
  const changed = results.filter((r) => changedAction(r) || r.action === "delete");
  const exit = exitOf(failed, changed, hookFailures);
  const counts = {
    created: results.filter((r) => r.action === "create").length,
    updated: results.filter((r) => r.action === "update").length,
    unchanged: results.filter((r) => r.action === "unchanged").length,
    deleted: results.filter((r) => r.action === "delete").length,
    failed: failed.length,
  };
  const summary = `${counts.created} created, ${counts.updated} updated, ${counts.deleted} deleted, ${counts.unchanged} unchanged, ${counts.failed} failed`;
  const requests = run.client.requestCount;
  if (opts.dryRun) {
    for (const n of plan.before) opts.print(n);
    for (const r of results) opts.print(describePlan(r));
    for (const h of plan.after) opts.print(h);
    opts.print(`plan: ${summary} (dry run: nothing written)`);
  } else {
    state.lastRun = { at, exit, summary };
    if (exit === ExitCode.Ok) state.lastSuccessAt = at;
    await run.save();
    for (const r of changed) log.info({ file: r.file, action: r.action, keysAdded: r.keysAdded, keysRemoved: r.keysRemoved, keysChanged: r.keysChanged }, describePlan(r));
    for (const r of failed) log.error({ file: r.file, code: errorCode(r.error) }, `${r.file}: ${describeError(r.error)}`);
    log.info({ ...counts, requests, auth: run.auth.via, hookFailures: hookFailures.length }, `sync: ${summary} (${requests} Vault requests, token ${run.auth.via})`);
  }
  return { exit, results, requests, auth: run.auth.via, hookFailures };
}
