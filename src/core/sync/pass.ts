/**
 * One sync pass over an open run: tidy up, fetch every source once, render and write every
 * output (PKI sets by their own lifecycle), prune what left the layout, fsync, notify (hooks,
 * revocations), report. Failures are isolated per output: a failed source or key leaves that
 * output's files untouched. KV secrets are read every pass.
 */
import { outputId } from "../layout/outputs.js";
import type { OutputSpec } from "../layout/schema.js";
import { sourceNeeds } from "../render/index.js";
import type { RunContext } from "../run/context.js";
import { syncDirs } from "../fs/writer.js";
import { fetchSources } from "./fetch.js";
import { notify } from "./notify.js";
import { cleanLeftovers, pruneRemoved } from "./prune.js";
import { report } from "./report.js";
import type { Forces, OutputResult, SyncResult } from "./result.js";
import { changedAction } from "./result.js";
import { writeOutputs } from "./write.js";

export async function syncPass(run: RunContext, forces: Forces): Promise<SyncResult> {
  const { layout, opts } = run;
  await cleanLeftovers(run);

  const { templates, needs, known } = await sourceNeeds(layout);
  const fetched = await fetchSources(run, known, forces);

  const results: OutputResult[] = [];
  const dirsToSync = new Set<string>();
  /** Output id → files of it that changed this run. */
  const changedFiles = new Map<string, string[]>();
  for (const [i, rs] of (await writeOutputs(run, forces, { needs, sources: fetched.sources, templates }, dirsToSync)).entries()) {
    results.push(...rs);
    const changed = rs.filter(changedAction).map((r) => r.file);
    if (changed.length) changedFiles.set(outputId(layout.outputs[i] as OutputSpec), changed);
  }
  results.push(...(await pruneRemoved(run, dirsToSync)));
  if (!opts.dryRun) await syncDirs(dirsToSync);

  const at = new Date(opts.clock.now()).toISOString();
  const { hookFailures, hookPlan } = await notify(run, at, results, changedFiles, fetched.revokes, needs);
  return report(run, at, results, hookFailures, { before: fetched.notes, after: hookPlan });
}
