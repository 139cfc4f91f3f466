/**
 * Committing several files as one unit (a certificate set). All temp files are written and
 * fsynced first; then a journal listing the renames (and the state records that describe the new
 * set) is written to agent-only/; then the renames happen; then the state is saved; then the
 * journal is removed. If the process dies before the journal is gone, the next run rolls the set
 * forward from the journal and applies its state records before doing anything else, so a set
 * never stays half old, half new, and a committed set is never mistaken for one with no record
 * (which would re-issue a certificate that is still valid).
 */
import { lstat, unlink } from "node:fs/promises";
import path from "node:path";
import type { OutputState, PkiState } from "../state/state.js";
import type { WriteFault } from "./writer.js";
import { commitTemp, readPrivate, syncDirs, writePrivate } from "./writer.js";

/** State records for the committed set, applied once the renames are done. */
export interface JournalRecords {
  pki?: Record<string, PkiState>;
  outputs?: Record<string, OutputState>;
}

export interface Journal {
  renames: Array<[string, string]>;
  state?: JournalRecords;
}

function journalFile(agentDir: string): string {
  return path.join(agentDir, "commit-journal.json");
}

export async function writeJournal(agentDir: string, journal: Journal): Promise<void> {
  await writePrivate(journalFile(agentDir), JSON.stringify(journal));
}

export interface CommitOptions {
  /** Paths to rename through (directory handles), parallel to `renames` (which the journal keeps). */
  via?: Array<[tmp: string, target: string]>;
  fault?: WriteFault;
  /** The state records that describe only the targets renamed so far, after a rename failed. */
  partial?: (done: string[]) => JournalRecords;
}

/**
 * Rename every temp over its target under a journal. `onCommitted` (which records the records it
 * is given in the state and saves it) runs before the journal is removed. When a rename fails,
 * nothing more is renamed: the remaining temps are removed, the journal is rewritten to list only
 * the renames done with `partial`'s records, `onCommitted` saves those, the journal goes and the
 * error is thrown, so state and journal describe what is on disk.
 */
export async function commitSet(
  agentDir: string,
  renames: Array<[tmp: string, target: string]>,
  records?: JournalRecords,
  onCommitted?: (applied: JournalRecords) => Promise<void>,
  opts: CommitOptions = {},
): Promise<void> {
  const file = journalFile(agentDir);
  await writeJournal(agentDir, { renames, state: records });
  const done: string[] = [];
  const dirs = new Set(renames.map(([, t]) => path.dirname(t)));
  try {
    for (const [i, [tmp, target]] of renames.entries()) {
      const via = opts.via?.[i];
      await commitTemp(via?.[0] ?? tmp, target, via?.[1], opts.fault);
      done.push(target);
    }
  } catch (e) {
    for (const [i, [tmp]] of renames.entries()) if (i > done.length) await unlink(opts.via?.[i]?.[0] ?? tmp).catch(() => undefined);
    await syncDirs(dirs);
    const partial = opts.partial?.(done) ?? {};
    await writeJournal(agentDir, { renames: renames.slice(0, done.length), state: partial });
    await onCommitted?.(partial);
    await unlink(file);
    throw e;
  }
  await syncDirs(dirs);
  await onCommitted?.(records ?? {});
  await unlink(file);
}

/**
 * Finish an interrupted set commit: roll the renames forward, then hand the journal's state
 * records to `apply` (which saves them) before the journal is removed. Returns the number of
 * files rolled forward.
 */
export async function recoverJournal(agentDir: string, apply?: (records: JournalRecords) => Promise<void>): Promise<number> {
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
  if (j.state && apply) await apply(j.state);
  await unlink(file);
  return n;
}
