/**
 * The notify step: hooks of the outputs that changed, then the revocation of replaced leases
 * whose consumers have been notified. Hooks are recorded as pending (and saved) before they run,
 * so a crash never loses a notification; a failed hook stays pending for the next sync.
 */
import { outputId } from "../layout/outputs.js";
import type { RunContext } from "../run/context.js";
import type { State } from "../state/state.js";
import { revokeLease } from "../vault/leases.js";
import { describeHookFailure, runHook } from "./hooks.js";
import type { ReplacedLease } from "./fetch.js";
import type { OutputResult } from "./result.js";
import { changedAction } from "./result.js";

export interface Notified {
  hookFailures: string[];
  /** Dry run: the hooks that would run. */
  hookPlan: string[];
}

/**
 * `at`: the time recorded for new pending hooks and revocations. `changed`: output id → its files that changed this run. `revokes`: leases replaced this run,
 * revoked once the hooks of the outputs reading them (`needs`) have run.
 */
export async function notify(run: RunContext, at: string, results: OutputResult[], changed: Map<string, string[]>, revokes: ReplacedLease[], needs: Map<string, string[] | Error>): Promise<Notified> {
  const { layout, opts, state } = run;
  const hooks = layout.raw.hooks ?? {};
  for (const o of layout.outputs) {
    const files = changed.get(outputId(o));
    if (!files) continue;
    for (const h of o.hooks ?? []) {
      const p = state.pendingHooks[h];
      if (opts.dryRun) continue;
      state.pendingHooks[h] = { files: [...new Set([...(p?.files ?? []), ...files])], since: p?.since ?? at, attempts: p?.attempts ?? 0, lastError: p?.lastError };
    }
  }
  if (opts.runHooks && !opts.dryRun) {
    for (const h of Object.keys(hooks)) state.pendingHooks[h] ??= { files: [], since: at, attempts: 0 };
  }
  const failed = new Set(results.filter((r) => r.action === "failed").map((r) => r.file));
  for (const { source, leaseId } of revokes) {
    const users = layout.outputs.filter((o) => {
      const n = needs.get(outputId(o));
      return Array.isArray(n) && n.includes(source);
    });
    // An output that failed (a validator refused the new file, a write failed) still holds the
    // replaced credentials: revoking them would break its consumers. Left to expire on its TTL.
    const stale = users.map(outputId).filter((id) => failed.has(id));
    if (stale.length) {
      opts.log.warn({ source, outputs: stale }, `the replaced lease of ${source} is not revoked: ${stale.join(", ")} failed and still hold its credentials (it expires on its own TTL)`);
      continue;
    }
    state.pendingRevokes.push({ leaseId, source, afterHooks: [...new Set(users.flatMap((o) => o.hooks ?? []))], since: at });
  }
  // Saved now only when something must survive a crash during hooks or revocations.
  if (!opts.dryRun && (Object.keys(state.pendingHooks).length > 0 || state.pendingRevokes.length > 0)) await run.save();

  // A pending hook that was removed from the layout is dropped.
  if (!opts.dryRun) for (const name of Object.keys(state.pendingHooks)) if (!hooks[name]) delete state.pendingHooks[name];
  const pendingNames = Object.keys(hooks).filter((h) => state.pendingHooks[h]);
  const out: Notified = { hookFailures: [], hookPlan: [] };
  if (opts.dryRun) {
    for (const h of Object.keys(hooks)) {
      const files = layout.outputs.filter((o) => (o.hooks ?? []).includes(h)).map(outputId).filter((id) => results.some((r) => changedAction(r) && (r.file === id || r.file.startsWith(id + "/"))));
      if (files.length || state.pendingHooks[h]) out.hookPlan.push(`hook      ${h}  would run${state.pendingHooks[h] ? " (pending from an earlier run)" : ""}`);
    }
  } else if (opts.noHooks) {
    if (pendingNames.length) opts.log.info({ hooks: pendingNames }, `hooks left pending (--no-hooks): ${pendingNames.join(", ")}`);
  } else {
    for (const name of pendingNames) {
      const p = state.pendingHooks[name];
      const spec = hooks[name];
      if (!p || !spec) continue;
      const ran = await runHook(name, spec, p.files, { env: opts.env, cwd: layout.dir, log: opts.log, redactor: opts.redactor, clock: opts.clock });
      if (ran.ok) {
        delete state.pendingHooks[name];
        opts.log.info({ hook: name, files: p.files }, `hook ${name} ran for ${p.files.length ? p.files.join(", ") : "a forced run"}`);
      } else {
        const msg = describeHookFailure(ran, spec);
        p.attempts += 1;
        p.lastError = msg;
        out.hookFailures.push(msg);
        opts.log.error({ hook: name, attempts: p.attempts }, `${msg}; it stays pending and runs again on the next sync`);
      }
      await run.save();
    }
  }
  if (!opts.dryRun) await revokeNotified(run);
  return out;
}

/** Revoke replaced leases whose consumers have been notified; the others (and failed revocations) stay pending. */
async function revokeNotified(run: RunContext): Promise<void> {
  const { state, opts } = run;
  const keep: State["pendingRevokes"] = [];
  for (const r of state.pendingRevokes) {
    if (r.afterHooks.some((h) => state.pendingHooks[h])) {
      keep.push(r);
      continue;
    }
    try {
      await revokeLease(run.client, r.leaseId);
      opts.log.info({ source: r.source }, `revoked the replaced lease of ${r.source}`);
    } catch (e) {
      keep.push(r);
      opts.log.warn({ source: r.source }, `could not revoke the replaced lease of ${r.source}: ${(e as Error).message}; will retry`);
    }
  }
  state.pendingRevokes = keep;
}
