/**
 * The file writer: the only module that creates, replaces or deletes files.
 *
 * Every write is atomic: a hidden temp file in the target's directory, created 0600 with O_EXCL
 * (so the umask never matters and nothing is readable before it is complete), every byte written
 * and checked, fchmod to the final mode, fsync, rename over the target. Directory fsyncs are
 * batched by the caller (`syncDirs`). Paths inside public/ are walked with lstat: a symlink at or
 * above a target is refused, never followed.
 */
import { constants as C } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { chmod, lstat, mkdir, open, readdir, readFile, rename, unlink } from "node:fs/promises";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { VrError } from "./errors.js";
import { TEMP_PREFIX } from "./paths.js";

export const FILE_MODE = 0o644;
export const DIR_MODE = 0o755;
export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

/** A seam for fault injection in reliability tests: called before each write(2) of a temp file. */
export type WriteFault = (file: string, offset: number) => void;

export interface CurrentFile {
  bytes: Buffer;
  mode: number;
}

function errnoOf(e: unknown): string {
  return (e as NodeJS.ErrnoException)?.code ?? "error";
}

function writeError(what: string, file: string, e: unknown): VrError {
  const code = errnoOf(e);
  const hints: Record<string, string> = {
    ENOSPC: "the disk is full; the old file was kept",
    EDQUOT: "the disk quota is exhausted; the old file was kept",
    EROFS: "the filesystem is read-only; the old file was kept",
    EACCES: "vault-render cannot write there: check the directory's owner and permissions",
    EPERM: "vault-render cannot write there: check the directory's owner and permissions",
  };
  return new VrError("WRITE", `cannot ${what} ${file}: ${code}`, { hint: hints[code], cause: e });
}

/**
 * Make sure `rel` (a directory path relative to root, "" for root itself) exists as a real
 * directory chain with mode `mode`, refusing symlinks. Adds the parent directories whose entries
 * changed to `changed` (they need an fsync); `checked` remembers directories already verified in
 * this run, so thousands of outputs in one directory cost one check.
 */
export async function ensureDirChain(root: string, rel: string, mode: number, changed: Set<string>, checked?: Set<string>): Promise<void> {
  const segs = rel === "" ? [] : rel.split("/");
  let cur = root;
  const one = async (dir: string) => {
    if (checked?.has(dir)) return;
    await ensureOneDir(dir, mode, changed, root);
    checked?.add(dir);
  };
  await one(cur);
  for (const s of segs) {
    cur = path.join(cur, s);
    await one(cur);
  }
}

async function ensureOneDir(dir: string, mode: number, changed: Set<string>, root: string): Promise<void> {
  let st;
  try {
    st = await lstat(dir);
  } catch (e) {
    if (errnoOf(e) !== "ENOENT") throw writeError("inspect", dir, e);
    try {
      await mkdir(dir, { mode });
    } catch (e2) {
      if (errnoOf(e2) !== "EEXIST") throw writeError("create directory", dir, e2);
    }
    st = await lstat(dir);
    changed.add(path.dirname(dir));
  }
  if (st.isSymbolicLink() && dir !== root) {
    throw new VrError("UNSAFE_PATH", `refusing to write through the symlinked directory ${dir}`, {
      hint: "vault-render never follows symlinks inside its tree; replace the link with a real directory",
    });
  }
  if (!st.isDirectory() && !st.isSymbolicLink()) {
    throw new VrError("UNSAFE_PATH", `${dir} is not a directory`, { hint: "remove or rename it" });
  }
  if (!st.isSymbolicLink() && (st.mode & 0o7777) !== mode) {
    try {
      await chmod(dir, mode);
    } catch (e) {
      throw writeError(`set mode ${mode.toString(8)} on`, dir, e);
    }
  }
}

/** The current content of a target, or null when missing. Refuses symlinks and non-regular files. */
export async function readCurrent(file: string): Promise<CurrentFile | null> {
  let st;
  try {
    st = await lstat(file);
  } catch (e) {
    if (errnoOf(e) === "ENOENT") return null;
    throw writeError("inspect", file, e);
  }
  if (st.isSymbolicLink()) {
    throw new VrError("UNSAFE_PATH", `refusing to replace the symlink at ${file}`, {
      hint: "something planted a symlink where vault-render writes a file; remove it",
    });
  }
  if (!st.isFile()) throw new VrError("UNSAFE_PATH", `${file} exists and is not a regular file`, { hint: "remove or rename it" });
  let fh: FileHandle | undefined;
  try {
    fh = await open(file, C.O_RDONLY | C.O_NOFOLLOW);
    const bytes = await fh.readFile();
    return { bytes, mode: st.mode & 0o7777 };
  } catch (e) {
    throw writeError("read", file, e);
  } finally {
    await fh?.close();
  }
}

/**
 * Write `bytes` into a new hidden temp file beside `file` (0600, O_EXCL, every byte checked,
 * fchmod to `mode`, fsync) and return its path. Nothing is visible at `file` yet.
 */
export async function prepareTemp(file: string, bytes: Uint8Array, mode: number, fault?: WriteFault): Promise<string> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `${TEMP_PREFIX}${process.pid}-${randomBytes(6).toString("hex")}`);
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, PRIVATE_FILE_MODE);
    let off = 0;
    while (off < bytes.length) {
      fault?.(file, off);
      const { bytesWritten } = await fh.write(bytes, off, bytes.length - off, off);
      if (bytesWritten <= 0) throw Object.assign(new Error("short write"), { code: "EIO" });
      off += bytesWritten;
    }
    const st = await fh.stat();
    if (st.size !== bytes.length) throw Object.assign(new Error("size mismatch after write"), { code: "EIO" });
    await fh.chmod(mode);
    await fh.sync();
    await fh.close();
    fh = undefined;
    return tmp;
  } catch (e) {
    await fh?.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    if (e instanceof VrError) throw e;
    throw writeError("write", file, e);
  }
}

/** Move a prepared temp file over its target (atomic on one filesystem). */
export async function commitTemp(tmp: string, file: string): Promise<void> {
  try {
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw writeError("replace", file, e);
  }
}

/** Replace `file` atomically with `bytes` at `mode`. The caller fsyncs the directory. */
export async function atomicWrite(file: string, bytes: Uint8Array, mode: number, fault?: WriteFault): Promise<void> {
  await commitTemp(await prepareTemp(file, bytes, mode, fault), file);
}

/** fsync each directory once (after a batch of renames or unlinks). */
export async function syncDirs(dirs: Iterable<string>): Promise<void> {
  for (const d of dirs) {
    let fh: FileHandle | undefined;
    try {
      fh = await open(d, C.O_RDONLY | C.O_DIRECTORY);
      await fh.sync();
    } catch {
      // A directory that cannot be opened for fsync (some filesystems) is not fatal: the
      // rename itself already happened atomically.
    } finally {
      await fh?.close().catch(() => undefined);
    }
  }
}

/** Delete a regular file we wrote (never a symlink or directory). Returns false when already gone. */
export async function removeFile(file: string): Promise<boolean> {
  try {
    const st = await lstat(file);
    if (!st.isFile()) {
      throw new VrError("UNSAFE_PATH", `not deleting ${file}: it is no longer a regular file`, { hint: "remove it by hand if it is not needed" });
    }
    await unlink(file);
    return true;
  } catch (e) {
    if (e instanceof VrError) throw e;
    if (errnoOf(e) === "ENOENT") return false;
    throw writeError("delete", file, e);
  }
}

/**
 * Remove temp files left by an interrupted run in `dirs` (only our reserved prefix). Runs under
 * the lock, so no live writer owns them. Returns the number removed.
 */
export async function cleanStaleTemps(dirs: Iterable<string>, opts: { skipLiveWriters?: boolean } = {}): Promise<number> {
  let n = 0;
  for (const d of dirs) {
    let names: string[];
    try {
      names = await readdir(d);
    } catch {
      continue;
    }
    for (const name of names) {
      if (!name.startsWith(TEMP_PREFIX)) continue;
      // In agent-only/, a temp of a live process (a dry run writing its token without the lock)
      // is not stale.
      if (opts.skipLiveWriters) {
        const pid = Number(/^(\d+)-/.exec(name.slice(TEMP_PREFIX.length))?.[1]);
        if (pid && pid !== process.pid && pidAlive(pid)) continue;
      }
      try {
        const st = await lstat(path.join(d, name));
        if (!st.isFile()) continue;
        await unlink(path.join(d, name));
        n++;
      } catch {
        // gone already
      }
    }
  }
  return n;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errnoOf(e) === "EPERM";
  }
}

/** Read a small private file (token, role_id, state) or null when missing. */
export async function readPrivate(file: string): Promise<Buffer | null> {
  try {
    return await readFile(file);
  } catch (e) {
    if (errnoOf(e) === "ENOENT") return null;
    throw writeError("read", file, e);
  }
}

/** Atomically write a private file in agent-only/ (0600) and fsync its directory. */
export async function writePrivate(file: string, bytes: Uint8Array | string, fault?: WriteFault): Promise<void> {
  const buf = typeof bytes === "string" ? Buffer.from(bytes) : bytes;
  await atomicWrite(file, buf, PRIVATE_FILE_MODE, fault);
  await syncDirs([path.dirname(file)]);
}
