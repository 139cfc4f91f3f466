/**
 * `sync`: authenticate, read every needed source once, render every output, write what changed
 * (atomically, 0644/0755), prune files removed from the layout, run hooks, record state. The run
 * is run/ (layout, lock, recovery, auth); the pass is pass.ts.
 */
import type { RunOptions } from "../run/context.js";
import { loadForRun, openRun } from "../run/context.js";
import { withLock } from "../run/lock.js";
import { recoverInterrupted } from "../run/recover.js";
import { syncPass } from "./pass.js";
import type { SyncResult } from "./result.js";

export async function runSync(opts: RunOptions): Promise<SyncResult> {
  const layout = await loadForRun(opts);
  return withLock(layout, opts, "sync", async () => {
    if (!opts.dryRun) await recoverInterrupted(layout, opts.log);
    const run = await openRun(layout, opts);
    try {
      return await syncPass(run, { pki: new Set(), leases: new Set() });
    } finally {
      run.client.close();
    }
  });
}
