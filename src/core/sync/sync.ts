/**
 * `sync`: authenticate, read every needed source once, render every output, write what changed
 * (atomically, 0644/0755), prune files removed from the layout, run hooks, record state. The run
 * is run/ (layout, lock, recovery, auth); the pass is pass.ts.
 */
import type { RunOptions } from "../run/context.js";
import { withRun } from "../run/context.js";
import { syncPass } from "./pass.js";
import type { SyncResult } from "./result.js";

export async function runSync(opts: RunOptions): Promise<SyncResult> {
  return withRun(opts, "sync", (run) => syncPass(run, { pki: new Set(), leases: new Set() }));
}
