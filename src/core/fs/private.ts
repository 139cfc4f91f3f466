/**
 * The small mutations outside an atomic write: a private directory or file (agent-only/, the
 * AppRole files) brought to its mode, a consumed private file deleted, the temps of a write that
 * will not be committed discarded. Like every file-system change they live in fs/; callers decide
 * when, and log what happened.
 */
import { chmod, lstat, unlink } from "node:fs/promises";
import type { Stats } from "node:fs";

/** What stands at a private directory's path: its stats, or null when nothing is there. */
export async function statPrivateDir(dir: string): Promise<Stats | null> {
  try {
    return await lstat(dir);
  } catch {
    return null;
  }
}

/** Set a private file or directory (agent-only/, a role_id or secret_id file) to `mode`; false when it cannot be changed. */
export async function setPrivateMode(file: string, mode: number): Promise<boolean> {
  try {
    await chmod(file, mode);
    return true;
  } catch {
    return false;
  }
}

/** Delete a private file that has been used up (a secret_id after its login); a missing file is fine. */
export async function removePrivateFile(file: string): Promise<void> {
  await unlink(file).catch(() => undefined);
}

/** Discard the temps of a write that will not be committed (best effort: a leftover is cleaned by the next run). */
export async function discardTemps(temps: Iterable<string>): Promise<void> {
  await Promise.all([...temps].map((tmp) => unlink(tmp).catch(() => undefined)));
}
