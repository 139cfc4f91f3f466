/**
 * Committing several files as one unit (a certificate set). All temp files are written and
 * fsynced first; then a journal listing the renames is written to agent-only/; then the renames
 * happen; then the journal is removed. If the process dies during the renames, the next run rolls
 * the set forward from the journal before doing anything else, so a set never stays half old,
 * half new.
 */
import { lstat, unlink } from "node:fs/promises";
import path from "node:path";
import { commitTemp, readPrivate, syncDirs, writePrivate } from "./writer.js";

interface Journal {
  renames: Array<[string, string]>;
}

export function journalFile(agentDir: string): string {
  return path.join(agentDir, "commit-journal.json");
}

export async function commitSet(agentDir: string, renames: Array<[tmp: string, target: string]>): Promise<void> {
  const file = journalFile(agentDir);
  await writePrivate(file, JSON.stringify({ renames } satisfies Journal));
  for (const [tmp, target] of renames) await commitTemp(tmp, target);
  await syncDirs(new Set(renames.map(([, t]) => path.dirname(t))));
  await unlink(file);
}

/** Finish an interrupted set commit. Returns the number of files rolled forward. */
export async function recoverJournal(agentDir: string): Promise<number> {
  const file = journalFile(agentDir);
  const buf = await readPrivate(file);
  if (!buf) return 0;
  let j: Journal;
  try {
    j = JSON.parse(buf.toString("utf8")) as Journal;
  } catch {
    await unlink(file);
    return 0;
  }
  let n = 0;
  for (const [tmp, target] of j.renames) {
    try {
      const st = await lstat(tmp);
      if (!st.isFile()) continue;
    } catch {
      continue; // already renamed
    }
    await commitTemp(tmp, target);
    n++;
  }
  await syncDirs(new Set(j.renames.map(([, t]) => path.dirname(t))));
  await unlink(file);
  return n;
}
