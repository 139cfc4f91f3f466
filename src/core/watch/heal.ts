/**
 * The heal check: does every managed file in public/ still look like what was written? A cheap
 * lstat signature per file, and the keyed hash of its content only when the signature changed.
 */
import { lstat, readFile } from "node:fs/promises";
import path from "node:path";
import type { ResolvedLayout } from "../layout/load.js";
import { outputFiles } from "../layout/outputs.js";
import { StateStore, keyedHash } from "../state/state.js";
import type { State } from "../state/state.js";
import { FILE_MODE } from "../fs/writer.js";

interface FileSig {
  ino: number;
  size: number;
  mtimeMs: number;
  mode: number;
}

/** What each managed file looked like when it last matched what was written, by path in public/. */
export type Signatures = Map<string, FileSig>;

const sigOf = (st: { ino: number; size: number; mtimeMs: number; mode: number }): FileSig => ({ ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, mode: st.mode & 0o7777 });

/** Is `abs` (a path under public/) a file this layout manages? */
export function isManaged(l: ResolvedLayout | null, sigs: Signatures, abs: string): boolean {
  if (!l) return false;
  const rel = path.relative(l.publicDir, abs).split(path.sep).join("/");
  return sigs.has(rel) || l.outputs.some((o) => outputFiles(o).includes(rel));
}

/** Cheap local check: does every managed file still look like what we wrote? (refreshes `sigs` of files that do) */
export async function needsHeal(l: ResolvedLayout, sigs: Signatures): Promise<boolean> {
  const store = new StateStore(l.agentDir);
  let state: State | null = null;
  let key: Buffer | null = null;
  for (const o of l.outputs) {
    for (const rel of outputFiles(o)) {
      const abs = path.join(l.publicDir, rel);
      let st;
      try {
        st = await lstat(abs);
      } catch {
        return true;
      }
      if (!st.isFile() || (st.mode & 0o7777) !== FILE_MODE) return true;
      const sig = sigs.get(rel);
      if (sig && sig.ino === st.ino && sig.size === st.size && sig.mtimeMs === st.mtimeMs) continue;
      // Changed signature: compare content with the keyed hash of what was written.
      state ??= await store.load();
      key ??= await store.hmacKey();
      const rec = state.outputs[rel];
      if (!rec) return true;
      if (keyedHash(key, await readFile(abs)) !== rec.hash) return true;
      sigs.set(rel, sigOf(st));
    }
  }
  return false;
}

/**
 * What each managed file looks like after a pass — only when its content still is what was
 * written (something may have touched it while the pass ran; then heal again).
 */
export async function recordSignatures(l: ResolvedLayout): Promise<Signatures> {
  const store = new StateStore(l.agentDir);
  const [state, key] = await Promise.all([store.load(), store.hmacKey()]);
  const sigs: Signatures = new Map();
  for (const o of l.outputs) {
    for (const rel of outputFiles(o)) {
      const abs = path.join(l.publicDir, rel);
      try {
        const st = await lstat(abs);
        const rec = state.outputs[rel];
        if (rec && st.isFile() && keyedHash(key, await readFile(abs)) === rec.hash) sigs.set(rel, sigOf(st));
      } catch {
        // missing: the next heal check notices
      }
    }
  }
  return sigs;
}
