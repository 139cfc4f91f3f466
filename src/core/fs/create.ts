/**
 * Creating a tree that may already exist (`vault-render init`): a directory made or brought to its
 * mode, a file created only where nothing stands (never overwritten). Like every file-system
 * change they live in fs/; the caller decides what to create and reports what happened.
 */
import { randomBytes } from "node:crypto";
import { chmod, link, lstat, mkdir, open, unlink } from "node:fs/promises";
import path from "node:path";
import { TEMP_PREFIX } from "./paths.js";

export type DirOutcome = { state: "created"; mode: number } | { state: "exists"; mode: number };

/** What stands at `p`: "dir", "file", "symlink", "other", or null when nothing does. */
export async function kindAt(p: string): Promise<{ kind: "dir" | "file" | "symlink" | "other"; mode: number } | null> {
  try {
    const s = await lstat(p);
    const kind = s.isSymbolicLink() ? "symlink" : s.isDirectory() ? "dir" : s.isFile() ? "file" : "other";
    return { kind, mode: s.mode & 0o7777 };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

/** Make directory `dir` with exactly `mode` (the umask does not apply); an existing one is left as it is and reported with its mode. */
export async function ensureDir(dir: string, mode: number): Promise<DirOutcome> {
  try {
    await mkdir(dir, { mode });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    const s = await lstat(dir);
    if (!s.isDirectory()) throw Object.assign(new Error(`${dir} exists and is not a directory`), { code: "ENOTDIR" });
    return { state: "exists", mode: s.mode & 0o7777 };
  }
  await chmod(dir, mode);
  return { state: "created", mode };
}

/** Make the missing parents of `dir`, as `mkdir -p` does (0755 less the umask); existing ones are left alone. */
export async function ensureParents(dir: string): Promise<void> {
  await mkdir(path.dirname(dir), { recursive: true, mode: 0o755 });
}

/** Set an existing directory's mode (one init owns: public/, agent-only/, its approle/). */
export async function setDirMode(dir: string, mode: number): Promise<void> {
  await chmod(dir, mode);
}

/**
 * Create `file` with `bytes` and exactly `mode`, only if nothing stands at its path: written to a
 * temp beside it, synced, then hard-linked into place (link fails with EEXIST rather than replace),
 * so a crash leaves either no file or the whole one, never a partial file a rerun would keep.
 * Returns false (and changes nothing) when the path is taken.
 */
export async function createNew(file: string, bytes: Uint8Array | string, mode: number): Promise<boolean> {
  if ((await kindAt(file)) !== null) return false;
  const tmp = path.join(path.dirname(file), `${TEMP_PREFIX}${process.pid}-${randomBytes(6).toString("hex")}`);
  const fh = await open(tmp, "wx", mode);
  try {
    try {
      await fh.writeFile(bytes);
      await fh.chmod(mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await link(tmp, file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw e;
    }
    return true;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}
