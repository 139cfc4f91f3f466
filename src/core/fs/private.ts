/**
 * The small mutations outside an atomic write: a private directory or file (agent-only/, the
 * AppRole files) brought to its mode, a consumed private file deleted, the temps of a write that
 * will not be committed discarded. Like every file-system change they live in fs/; callers decide
 * when, and log what happened.
 */
import { randomBytes } from "node:crypto";
import { renameSync, unlinkSync, writeFileSync } from "node:fs";
import { chmod, lstat, rename, unlink } from "node:fs/promises";
import type { Stats } from "node:fs";
import path from "node:path";
import { PRIVATE_FILE_MODE } from "./writer.js";
import { TEMP_PREFIX } from "./paths.js";

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

/** Move a damaged private file aside to `kept` (0600), so the next run starts afresh and the original stays for a human; throws the errno error when it cannot. */
export async function keepAside(file: string, kept: string): Promise<void> {
  await rename(file, kept);
  await chmod(kept, PRIVATE_FILE_MODE);
}

/**
 * Best effort, synchronously: a private file (0600) replaced by temp + rename, the temp named as
 * a run's temps are, so a process killed here leaves nothing the next run does not clean. A
 * failure leaves the old file (or none) and no temp.
 */
export function tryWritePrivateSync(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `${TEMP_PREFIX}${process.pid}-${randomBytes(6).toString("hex")}`);
  try {
    writeFileSync(tmp, text, { mode: PRIVATE_FILE_MODE, flag: "wx" });
    renameSync(tmp, file);
  } catch {
    try {
      unlinkSync(tmp);
    } catch {
      // never created
    }
  }
}
