/**
 * The watch loop's use of the sync library, in one place: loading a layout (with its agent-only
 * directory) and one pass under the lock, with what the scheduler needs from its state.
 */
import path from "node:path";
import type { Env, ResolvedLayout } from "../layout/load.js";
import { loadLayout } from "../layout/load.js";
import { isPki } from "../layout/outputs.js";
import type { Logger } from "../support/log.js";
import type { Redactor } from "../support/redact.js";
import { thresholdMs } from "../vault/leases.js";
import type { State } from "../state/state.js";
import type { RunOptions } from "../run/context.js";
import { openRun, prepareAgentDir } from "../run/context.js";
import { withLock } from "../run/lock.js";
import { recoverInterrupted } from "../run/recover.js";
import { syncPass } from "../sync/pass.js";
import type { SyncResult } from "../sync/result.js";
import type { LifecycleInputs } from "./schedule.js";

/** Load and validate the layout, make its secrets known to the redactor, and prepare its agent-only directory. */
export async function loadPrepared(file: string, env: Env, redactor: Redactor, log: Logger): Promise<ResolvedLayout> {
  const l = await loadLayout(file, env, "write");
  redactor.setPublicText(l.text);
  await prepareAgentDir(l, log);
  return l;
}

/** The lifecycle times' inputs from a pass's state: the token, each lease the layout still has, each certificate set. */
function lifecycleInputs(l: ResolvedLayout, state: State, tokenTtlSec: number, passAt: number): LifecycleInputs {
  const leases: Array<{ expiresAt: number; thresholdMs: number }> = [];
  for (const [name, rec] of Object.entries(state.leases)) {
    const spec = l.sources.get(name);
    if (spec?.type === "lease") leases.push({ expiresAt: rec.expiresAt, thresholdMs: thresholdMs(spec, rec.duration) });
  }
  const certificates: LifecycleInputs["certificates"][number][] = [];
  for (const o of l.outputs) {
    if (!isPki(o)) continue;
    const p = state.pki[path.posix.normalize(o.dir)];
    if (p) certificates.push({ notBefore: p.notBefore, notAfter: p.notAfter, renewBefore: o.renewBefore });
  }
  return { passAt, tokenTtlSec, leases, certificates };
}

/**
 * One pass under the lock (journal recovery first). `afterPass` sees the lifecycle inputs while
 * the session is still open, so the scheduler's `now` is read before the lock is released.
 */
export async function lockedPass(l: ResolvedLayout, opts: RunOptions, passAt: number, afterPass: (lifecycle: LifecycleInputs) => void): Promise<SyncResult> {
  return withLock(l, opts, "watch", async () => {
    await recoverInterrupted(l, opts.log);
    const s = await openRun(l, opts);
    try {
      const r = await syncPass(s, { pki: new Set(), leases: new Set() });
      afterPass(lifecycleInputs(l, s.state, s.auth.ttl, passAt));
      return r;
    } finally {
      s.client.close();
    }
  });
}
