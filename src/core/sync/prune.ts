/**
 * The tidy-up steps, both limited to what vault-render owns: before the writes, the temps a killed
 * run left and the modes of public/'s directories; after them, the files and records of outputs
 * that left the layout (only a file that still has the bytes vault-render wrote), and the leases
 * of sources that left it (queued for revocation).
 */
import path from "node:path";
import type { ResolvedLayout } from "../layout/load.js";
import { outputFiles, outputId } from "../layout/outputs.js";
import type { RunContext } from "../run/context.js";
import { keyedHash } from "../state/state.js";
import { checkOutputPath } from "../fs/paths.js";
import { DIR_MODE, cleanStaleTemps, cleanStaleTempsInTree, fixDirModes, removeOwnedFile, splitRel } from "../fs/writer.js";
import type { OutputResult } from "./result.js";

/** public/ and the directory of every output file, relative to public/ ("" is public/ itself). */
function outputDirRels(layout: ResolvedLayout): Set<string> {
  return new Set(["", ...layout.outputs.flatMap((o) => outputFiles(o).map((f) => splitRel(f)[0]))]);
}

/** Remove the temps of an interrupted run and set every directory vault-render owns in public/ to 0755 (not in dry runs). */
export async function cleanLeftovers(run: RunContext): Promise<void> {
  const { layout, opts } = run;
  if (opts.dryRun) return;
  // Temp files of a killed run can be in public/ and in agent-only/ (token, state, leases).
  const privateDirs = new Set([layout.agentDir, path.dirname(layout.approle.roleIdFile), path.dirname(layout.approle.secretIdFile)]);
  // public/ directories are opened without following links (a symlinked one is never entered).
  const publicDirs = outputDirRels(layout);
  const n = (await cleanStaleTempsInTree(layout.publicDir, publicDirs)) + (await cleanStaleTemps(privateDirs, { skipLiveWriters: true }));
  if (n) opts.log.info({ count: n }, `removed ${n} temp files left by an interrupted run`);
  // Those on the way to an output are 0755.
  for (const { dir, from } of await fixDirModes(layout.publicDir, publicDirs, DIR_MODE)) {
    opts.log.info({ dir }, `set directory ${dir} to mode 0755 (it was ${from.toString(8).padStart(4, "0")})`);
  }
}

/** Prune what left the layout: its files (only files vault-render itself wrote), their records, its leases. */
export async function pruneRemoved(run: RunContext, dirsToSync: Set<string>): Promise<OutputResult[]> {
  const { layout, state, opts } = run;
  const results: OutputResult[] = [];
  const current = new Set(layout.outputs.flatMap((o) => outputFiles(o)));
  for (const file of Object.keys(state.outputs)) {
    if (current.has(file)) continue;
    const r = await pruneOne(run, file, dirsToSync);
    if (r) results.push(r);
  }
  const ids = new Set(layout.outputs.map(outputId));
  for (const f of Object.keys(state.failures)) if (!ids.has(f) && !current.has(f)) delete state.failures[f];
  for (const id of Object.keys(state.pki)) if (!ids.has(id)) delete state.pki[id];
  // Leases of sources no longer in the layout are revoked.
  for (const [name, rec] of Object.entries(state.leases)) {
    if (layout.sources.get(name)?.type === "lease") continue;
    if (!opts.dryRun) {
      state.pendingRevokes.push({ leaseId: rec.leaseId, source: name, afterHooks: [], since: new Date(opts.clock.now()).toISOString() });
      delete state.leases[name];
    }
  }
  return results;
}

/**
 * Prune one file that left the layout: only a path that is valid for an output, only through
 * real directories inside public/, only a regular file that still has the bytes vault-render
 * recorded. A record with an invalid path is dropped; a file changed by hand is kept. Both warn.
 */
async function pruneOne(run: RunContext, file: string, dirsToSync: Set<string>): Promise<OutputResult | null> {
  const { layout, state, opts } = run;
  const rec = state.outputs[file];
  const problem = checkOutputPath(file);
  if (problem || !rec) {
    opts.log.warn({ file: JSON.stringify(file) }, `ignoring the state record for ${JSON.stringify(file)}: its path ${problem ?? "has no record"}; nothing was deleted`);
    if (!opts.dryRun) delete state.outputs[file];
    return null;
  }
  try {
    const res = await removeOwnedFile(layout.publicDir, file, (b) => keyedHash(run.hmacKey, b) === rec.hash, opts.dryRun);
    if (res === "modified") {
      opts.log.warn({ file }, `kept ${file}: it left the layout but was changed since vault-render wrote it; delete it by hand if it is not needed`);
      if (!opts.dryRun) delete state.outputs[file];
      return { file, action: "unchanged", note: "kept: changed since vault-render wrote it" };
    }
    if (!opts.dryRun) {
      dirsToSync.add(path.dirname(path.join(layout.publicDir, file)));
      delete state.outputs[file];
    }
    return { file, action: "delete" };
  } catch (e) {
    return { file, action: "failed", error: e as Error };
  }
}
