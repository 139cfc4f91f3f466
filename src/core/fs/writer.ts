/**
 * The file writer: the only module that creates, replaces or deletes files.
 *
 * Every write is atomic: a hidden temp file in the target's directory, created 0600 with O_EXCL
 * (so the umask never matters and nothing is readable before it is complete), every byte written
 * and checked, fchmod to the final mode, fsync, rename over the target. Directory fsyncs are
 * batched by the caller (`syncDirs`). Directories inside public/ are opened one by one without
 * following links and written through their handles (`openDirChain`): a symlink at or above a
 * target is refused, never followed, even when it replaces a directory in the middle of a run.
 */
import { closeSync, constants as C, fchmodSync, fstatSync, fsync as fsyncCb, lstatSync, openSync, readSync, writeSync } from "node:fs";
import { promisify } from "node:util";
import type { Stats } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { lstat, mkdir, open, readdir, readFile, rename, unlink } from "node:fs/promises";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { mapLimit } from "../support/clock.js";
import { VrError } from "../support/errors.js";
import { TEMP_PREFIX } from "./paths.js";
import { processAlive } from "./lock.js";

export const FILE_MODE = 0o644;
export const DIR_MODE = 0o755;
export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

/**
 * A seam for fault injection in reliability tests: called before each write(2) of a temp file,
 * and with `op` "rename" before a temp file is renamed over its target.
 */
export type WriteFault = (file: string, offset: number, op?: "write" | "rename") => void;

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
 * The current content of a target, or null when missing. Refuses symlinks and non-regular files.
 * One open (never following a link, never blocking on a FIFO), one fstat, the reads, one close,
 * as plain synchronous calls: every no-op run does this for every output, and for small files
 * in the page cache a synchronous call costs about a quarter of an async one's thread-pool round
 * trip (docs/benchmarks.md). The only async work in flight meanwhile is other outputs' writes
 * (their mkdir and fsyncs), which a synchronous call of a few microseconds hardly delays.
 */
export function readCurrent(file: string): Promise<CurrentFile | null> {
  let fd: number;
  try {
    fd = openSync(file, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
  } catch (e) {
    if (errnoOf(e) === "ENOENT") return Promise.resolve(null);
    // Rare: say exactly what is there (a symlink, a socket, a directory we may not search).
    return refuseNonFile(file).then(() => Promise.reject(writeError("read", file, e)));
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return Promise.reject(notRegular(file));
    // One byte more than the size, to see the end in the same read when the size is right.
    let buf = Buffer.allocUnsafe(st.size + 1);
    let n = 0;
    for (;;) {
      if (n === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, n);
        buf = bigger;
      }
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
    }
    return Promise.resolve({ bytes: buf.subarray(0, n), mode: st.mode & 0o7777 });
  } catch (e) {
    return Promise.reject(writeError("read", file, e));
  } finally {
    closeSync(fd);
  }
}

/** fsync a descriptor (async: it waits for the disk). */
const fsyncFd = promisify(fsyncCb);

/** Close a descriptor that may already be closed (on an error path). */
function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

function notRegular(file: string): VrError {
  return new VrError("UNSAFE_PATH", `${file} exists and is not a regular file`, { hint: "remove or rename it" });
}

/** Throws the refusal for a target that is a symlink or not a regular file (its lstat). */
function refuseUnlessFile(st: Stats, file: string): void {
  if (st.isSymbolicLink()) {
    throw new VrError("UNSAFE_PATH", `refusing to replace the symlink at ${file}`, {
      hint: "something planted a symlink where vault-render writes a file; remove it",
    });
  }
  if (!st.isFile()) throw notRegular(file);
}

/** Throws the precise refusal for whatever is at `file` when it is not a regular file. */
async function refuseNonFile(file: string): Promise<void> {
  let st;
  try {
    st = await lstat(file);
  } catch (e) {
    throw writeError("inspect", file, e);
  }
  refuseUnlessFile(st, file);
}

/**
 * Write `bytes` into a new hidden temp file beside `file` (0600, O_EXCL, every byte checked,
 * fchmod to `mode`, fsync) and return its path. Nothing is visible at `file` yet.
 */
export async function prepareTemp(file: string, bytes: Uint8Array, mode: number, fault?: WriteFault, dirVia?: string): Promise<string> {
  const dir = dirVia ?? path.dirname(file);
  const tmp = path.join(dir, `${TEMP_PREFIX}${process.pid}-${randomBytes(6).toString("hex")}`);
  // Synchronous calls into the page cache; only the fsync, which waits for the disk, is async.
  let fd: number | undefined;
  try {
    fd = openSync(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, PRIVATE_FILE_MODE);
    let off = 0;
    while (off < bytes.length) {
      fault?.(file, off);
      const written = writeSync(fd, bytes, off, bytes.length - off, off);
      if (written <= 0) throw Object.assign(new Error("short write"), { code: "EIO" });
      off += written;
    }
    if (fstatSync(fd).size !== bytes.length) throw Object.assign(new Error("size mismatch after write"), { code: "EIO" });
    fchmodSync(fd, mode);
    await fsyncFd(fd);
    closeSync(fd);
    fd = undefined;
    return tmp;
  } catch (e) {
    if (fd !== undefined) {
      closeQuietly(fd);
    }
    await unlink(tmp).catch(() => undefined);
    if (e instanceof VrError) throw e;
    throw writeError("write", file, e);
  }
}

/**
 * Move a prepared temp file over its target (atomic on one filesystem). `via` is the path to
 * rename to when it differs from the name used in messages (a directory handle's path).
 */
export async function commitTemp(tmp: string, file: string, via?: string, fault?: WriteFault): Promise<void> {
  try {
    fault?.(file, -1, "rename");
    await rename(tmp, via ?? file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw writeError("replace", file, e);
  }
}

/** Replace `file` atomically with `bytes` at `mode`. The caller fsyncs the directory. */
export async function atomicWrite(file: string, bytes: Uint8Array, mode: number, fault?: WriteFault): Promise<void> {
  await commitTemp(await prepareTemp(file, bytes, mode, fault), file);
}

/** fsync each directory once (after a batch of renames or unlinks), `DIR_FSYNC_WIDTH` at a time. */
export async function syncDirs(dirs: Iterable<string>): Promise<void> {
  await mapLimit([...dirs], DIR_FSYNC_WIDTH, async (d) => {
    let fd: number | undefined;
    try {
      fd = openSync(d, C.O_RDONLY | C.O_DIRECTORY);
      await fsyncFd(fd);
    } catch {
      // A directory that cannot be opened for fsync (some filesystems) is not fatal: the
      // rename itself already happened atomically.
    } finally {
      if (fd !== undefined) {
        closeQuietly(fd);
      }
    }
  });
}

/** Directory fsyncs in flight at once (the default `vault.concurrency`; the disk orders them anyway). */
const DIR_FSYNC_WIDTH = 8;

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
        if (pid && pid !== process.pid && processAlive(pid)) continue;
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

/*
 * public/ walked through directory handles. Each component below the root is opened with
 * O_DIRECTORY|O_NOFOLLOW relative to its parent's handle (Linux: /proc/self/fd/N/<name>), so a
 * directory swapped for a symlink after it was checked can never redirect a write, a chmod, a
 * deletion or a temp cleanup outside the tree: the operation either happens in the directory
 * that was verified or fails. The root itself may be a symlink (public/ on another disk).
 */

/** An open, verified directory of public/. `path` names it through its handle. */
export interface DirHandle {
  /** The directory as users know it (for messages and fsync batching). */
  real: string;
  /** A path that resolves through the open handle, never through a replaced name. */
  path: string;
  close(): Promise<void>;
}

const PROC_FD = "/proc/self/fd";
let procFdOk: boolean | undefined;

async function hasProcFd(): Promise<boolean> {
  if (procFdOk === undefined) {
    try {
      await lstat(PROC_FD);
      procFdOk = true;
    } catch {
      procFdOk = false;
    }
  }
  return procFdOk;
}

function symlinkDirError(dir: string): VrError {
  return new VrError("UNSAFE_PATH", `refusing to write through the symlinked directory ${dir}`, {
    hint: "vault-render never follows symlinks inside its tree; replace the link with a real directory",
  });
}

/**
 * Open `root/rel` ("" for root) as a chain of real directories without following links below the
 * root. With `create`, missing directories are made at `create.mode` (their parents added to
 * `create.changed`); otherwise a missing component gives null. With `fixMode`, every directory
 * of the chain (the root too, unless it is a symlink) gets that mode, through its handle;
 * `onModeFixed` hears about each. Throws UNSAFE_PATH for a symlink or a non-directory.
 */
export async function openDirChain(
  root: string,
  rel: string,
  opts: { create?: { mode: number; changed: Set<string> }; fixMode?: number; onModeFixed?: (dir: string, from: number) => void } = {},
): Promise<DirHandle | null> {
  // Opens, stats and closes are plain synchronous calls (a directory in the page cache answers in
  // microseconds, a quarter of an async round trip; every write and every run's tree check
  // passes here); only mkdir, which may wait on the disk's journal, is async.
  const segs = rel === "" ? [] : rel.split("/");
  const viaProc = await hasProcFd();
  let fd: number;
  try {
    fd = openSync(root, C.O_RDONLY | C.O_DIRECTORY);
  } catch (e) {
    if (errnoOf(e) !== "ENOENT") throw writeError("open directory", root, e);
    if (!opts.create) return null;
    try {
      await mkdir(root, { mode: opts.create.mode });
    } catch (e2) {
      if (errnoOf(e2) !== "EEXIST") throw writeError("create directory", root, e2);
    }
    opts.create.changed.add(path.dirname(root));
    try {
      fd = openSync(root, C.O_RDONLY | C.O_DIRECTORY);
    } catch (e3) {
      throw writeError("open directory", root, e3);
    }
  }
  let real = root;
  const here = () => (viaProc ? `${PROC_FD}/${fd}` : real);
  try {
    if (opts.fixMode !== undefined && !lstatSync(root).isSymbolicLink()) fixOneMode(fd, real, opts.fixMode, opts.onModeFixed);
    for (const seg of segs) {
      const parentVia = here();
      const childReal = path.join(real, seg);
      const childVia = path.join(parentVia, seg);
      let next: number | undefined;
      for (let attempt = 0; next === undefined; attempt++) {
        try {
          next = openSync(childVia, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW);
        } catch (e) {
          const code = errnoOf(e);
          if (code === "ENOENT" && opts.create && attempt < 3) {
            try {
              await mkdir(childVia, { mode: opts.create.mode });
              opts.create.changed.add(real);
            } catch (e2) {
              if (errnoOf(e2) !== "EEXIST") throw writeError("create directory", childReal, e2);
            }
            continue;
          }
          if (code === "ENOENT") {
            closeSync(fd);
            return null;
          }
          if (code === "ELOOP" || code === "ENOTDIR") {
            let st: Stats | null = null;
            try {
              st = lstatSync(childVia);
            } catch {
              // gone meanwhile
            }
            if (st?.isSymbolicLink()) throw symlinkDirError(childReal);
            throw new VrError("UNSAFE_PATH", `${childReal} is not a directory`, { hint: "remove or rename it" });
          }
          throw writeError("open directory", childReal, e);
        }
      }
      closeSync(fd);
      fd = next;
      real = childReal;
      if (opts.fixMode !== undefined) fixOneMode(fd, real, opts.fixMode, opts.onModeFixed);
    }
  } catch (e) {
    closeQuietly(fd);
    throw e;
  }
  const handle = fd;
  let open = true;
  return {
    real,
    path: here(),
    close: () => {
      if (open) {
        open = false;
        closeQuietly(handle);
      }
      return Promise.resolve();
    },
  };
}

function fixOneMode(fd: number, dir: string, mode: number, onFixed?: (dir: string, from: number) => void): void {
  const cur = fstatSync(fd).mode & 0o7777;
  if (cur === mode) return;
  try {
    fchmodSync(fd, mode);
  } catch (e) {
    throw writeError(`set mode ${mode.toString(8)} on`, dir, e);
  }
  onFixed?.(dir, cur);
}

/** Split a path relative to public/ into its directory ("" for the root) and its name. */
export function splitRel(rel: string): [dir: string, name: string] {
  const i = rel.lastIndexOf("/");
  return i < 0 ? ["", rel] : [rel.slice(0, i), rel.slice(i + 1)];
}

/** Inspect a name inside an open directory: null when missing; refuses symlinks and non-regular files. */
// eslint-disable-next-line @typescript-eslint/require-await -- async on purpose: a refusal is a rejection, as its callers await it
export async function lstatIn(dir: DirHandle, name: string): Promise<Stats | null> {
  const real = path.join(dir.real, name);
  let st;
  try {
    st = lstatSync(path.join(dir.path, name));
  } catch (e) {
    if (errnoOf(e) === "ENOENT") return null;
    throw writeError("inspect", real, e);
  }
  refuseUnlessFile(st, real);
  return st;
}

/**
 * A step between a complete temp file and its rename (a validation): given the temp's absolute
 * path as other processes see it (not through the directory handle). Throwing stops the write:
 * the temp is removed and the target is left as it was.
 */
export type BeforeCommit = (tmpAbs: string) => Promise<void>;

/** Run `beforeCommit` on a prepared temp; when it throws, the temp (`tmpVia`, the handle's path) is removed. */
async function checkTemp(tmpVia: string, tmpAbs: string, beforeCommit: BeforeCommit): Promise<void> {
  try {
    await beforeCommit(tmpAbs);
  } catch (e) {
    await unlink(tmpVia).catch(() => undefined);
    throw e;
  }
}

/**
 * Replace `root/rel` atomically with `bytes` at `mode`, every directory opened without following
 * links (created 0755-style at `dirMode` when missing, and set to it). Adds the file's directory
 * to `changed` for the caller's fsync. `beforeCommit` sees the complete temp before the rename.
 */
export async function writeInTree(root: string, rel: string, bytes: Uint8Array, mode: number, dirMode: number, changed: Set<string>, fault?: WriteFault, beforeCommit?: BeforeCommit): Promise<void> {
  const [dirRel, name] = splitRel(rel);
  const dir = (await openDirChain(root, dirRel, { create: { mode: dirMode, changed }, fixMode: dirMode })) as DirHandle;
  try {
    await lstatIn(dir, name);
    const file = path.join(dir.real, name);
    const tmp = await prepareTemp(file, bytes, mode, fault, dir.path);
    if (beforeCommit) await checkTemp(tmp, path.join(dir.real, path.basename(tmp)), beforeCommit);
    await commitTemp(tmp, file, path.join(dir.path, name), fault);
    changed.add(dir.real);
  } finally {
    await dir.close();
  }
}

/**
 * Set every existing directory on the way to each of `dirRels` (and public/ itself) to `mode`,
 * through handles. Returns the directories changed; a missing or refused component stops that
 * chain (the write of its outputs reports it).
 */
export async function fixDirModes(root: string, dirRels: Iterable<string>, mode: number): Promise<Array<{ dir: string; from: number }>> {
  const fixed: Array<{ dir: string; from: number }> = [];
  const done = new Set<string>();
  const onModeFixed = (dir: string, from: number) => {
    if (!done.has(dir)) fixed.push({ dir, from });
    done.add(dir);
  };
  for (const rel of new Set(dirRels)) {
    try {
      const h = await openDirChain(root, rel, { fixMode: mode, onModeFixed });
      await h?.close();
    } catch {
      // reported by the writes that need this directory
    }
  }
  return fixed;
}

/**
 * Delete `root/rel` only when every directory on its way is a real directory inside the tree,
 * it is a regular file, and `owns(bytes)` says it still holds what vault-render wrote. Returns
 * "gone" when it is already missing, "modified" (kept) when its bytes changed.
 */
export async function removeOwnedFile(root: string, rel: string, owns: (bytes: Buffer) => boolean, dryRun = false): Promise<"deleted" | "gone" | "modified"> {
  const [dirRel, name] = splitRel(rel);
  const dir = await openDirChain(root, dirRel);
  if (!dir) return "gone";
  try {
    const real = path.join(dir.real, name);
    let st;
    try {
      st = await lstat(path.join(dir.path, name));
    } catch (e) {
      if (errnoOf(e) === "ENOENT") return "gone";
      throw writeError("inspect", real, e);
    }
    if (!st.isFile()) {
      throw new VrError("UNSAFE_PATH", `not deleting ${real}: it is no longer a regular file`, { hint: "remove it by hand if it is not needed" });
    }
    let bytes: Buffer;
    let fh: FileHandle | undefined;
    try {
      fh = await open(path.join(dir.path, name), C.O_RDONLY | C.O_NOFOLLOW);
      bytes = await fh.readFile();
    } catch (e) {
      throw writeError("read", real, e);
    } finally {
      await fh?.close();
    }
    if (!owns(bytes)) return "modified";
    if (dryRun) return "deleted";
    try {
      await unlink(path.join(dir.path, name));
    } catch (e) {
      if (errnoOf(e) === "ENOENT") return "gone";
      throw writeError("delete", real, e);
    }
    return "deleted";
  } finally {
    await dir.close();
  }
}

/**
 * Remove stale temp files (our reserved prefix) in the directories `dirRels` of public/, each
 * opened without following links: a directory replaced by a symlink is skipped, never entered.
 */
export async function cleanStaleTempsInTree(root: string, dirRels: Iterable<string>): Promise<number> {
  let n = 0;
  for (const rel of new Set(dirRels)) {
    let dir: DirHandle | null;
    try {
      dir = await openDirChain(root, rel);
    } catch {
      continue;
    }
    if (!dir) continue;
    try {
      let names: string[];
      try {
        names = await readdir(dir.path);
      } catch {
        continue;
      }
      for (const name of names) {
        if (!name.startsWith(TEMP_PREFIX)) continue;
        try {
          const st = await lstat(path.join(dir.path, name));
          if (!st.isFile()) continue;
          await unlink(path.join(dir.path, name));
          n++;
        } catch {
          // gone already
        }
      }
    } finally {
      await dir.close();
    }
  }
  return n;
}
