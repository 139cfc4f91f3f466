/**
 * A lock file in agent-only/ makes overlapping runs (cron plus a manual run, watch plus rotate)
 * safe. Created with O_EXCL; a lock whose holder is provably gone is broken under a second,
 * short-lived "break" lock so two waiters never both break it.
 *
 * Host name and pid alone prove nothing in containers (a recreated container has a new host name,
 * a restarted one reuses pids, even this process's own pid), so a lock is judged by:
 * - its heartbeat: the holder refreshes the lock file's mtime every HEARTBEAT_MS while it holds
 *   it; a lock not refreshed for STALE_MS is stale, whatever host and pid it names;
 * - the holder's identity: boot id, pid namespace, pid and process start time (/proc). Only when
 *   the lock comes from this boot and this pid namespace can its pid be looked up here; if that
 *   pid is not running, or runs a process with another start time (pid reuse), the lock is stale
 *   at once. A holder in another pid namespace (another container) is judged by its heartbeat only,
 *   so a live one is never broken.
 */
import { constants as C, readFileSync, readlinkSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { link, open, readFile, stat, unlink } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { TEMP_PREFIX } from "./paths.js";
import { hostname } from "node:os";
import { ExitCode, VrError } from "../support/errors.js";
import { formatDuration } from "../support/duration.js";

/** How often a holder refreshes the lock's mtime. */
export const HEARTBEAT_MS = 2000;
/** A lock whose mtime is older than this is stale, whoever it names. */
export const STALE_MS = 20_000;
/** A break lock older than this was left by a crashed breaker. */
const BREAK_STALE_MS = 10_000;

/** Who holds a lock: what is written into it. */
export interface LockIdentity {
  pid: number;
  host: string;
  /** /proc/sys/kernel/random/boot_id (absent off Linux). */
  boot?: string;
  /** The pid namespace, as readlink /proc/self/ns/pid shows it ("pid:[4026531836]"). */
  pidns?: string;
  /** Start time of the process in clock ticks since boot (/proc/<pid>/stat field 22). */
  start?: number;
}

interface LockInfo extends LockIdentity {
  started: string;
  command: string;
}

export interface LockDeps {
  now: () => number;
  /** Wait; resolves early when the signal is aborted (Clock.sleep). */
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  isAlive: (pid: number) => boolean;
  /** Stops a wait for the lock (watch being stopped): acquire throws LOCK_ABORTED. */
  signal?: AbortSignal;
  /** Told once when the lock is held by someone else and acquire starts waiting (who holds it). */
  onWait?: (holder: string) => void;
  /** Told when a stale lock was removed (whose, and why it was judged stale). */
  onBreak?: (holder: string, reason: string) => void;
  /** This process's identity (tests pose as another container); default: read from /proc. */
  self?: LockIdentity;
  /** Start time of `pid` in this pid namespace, or null when no such process (default: /proc). */
  startOf?: (pid: number) => number | null | undefined;
}

/** Whether `pid` runs in this pid namespace (EPERM: it does, as another user); also writer.ts's live temp files. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Field 22 (starttime) of /proc/<pid>/stat: null when the process does not exist, undefined
 * when it cannot be told (no /proc). The command name (field 2) may contain spaces and ")".
 */
function procStartTime(pid: number | "self"): number | null | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === "ENOENT" || code === "ESRCH" ? (pid === "self" ? undefined : null) : undefined;
  }
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state; a zombie has exited), so field 22 is fields[19].
  if (pid !== "self" && (fields[0] === "Z" || fields[0] === "X")) return null;
  const v = Number(fields[19]);
  return Number.isFinite(v) ? v : undefined;
}

let cachedSelf: LockIdentity | undefined;
/** This process's identity, read once. */
export function selfIdentity(): LockIdentity {
  if (cachedSelf) return cachedSelf;
  const id: LockIdentity = { pid: process.pid, host: hostname() };
  try {
    id.boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    id.pidns = readlinkSync("/proc/self/ns/pid");
    const start = procStartTime("self");
    if (start !== undefined && start !== null) id.start = start;
  } catch {
    // not Linux, or /proc not mounted: judged by heartbeat (and host + pid, as a last resort)
  }
  if (!id.boot || !id.pidns || id.start === undefined) {
    delete id.boot;
    delete id.pidns;
    delete id.start;
  }
  cachedSelf = id;
  return id;
}

/**
 * Why the lock's holder is provably gone, or null while it may be alive. `ageMs` is how long ago
 * its heartbeat was last refreshed. A holder we cannot look up (another pid namespace or boot) is
 * alive until its heartbeat stops.
 */
function staleReason(info: LockInfo | null, ageMs: number, deps: Pick<LockDeps, "isAlive" | "self" | "startOf">): string | null {
  if (ageMs > STALE_MS) return `no heartbeat for ${formatDuration(ageMs)}`;
  if (!info) return null;
  const me = deps.self ?? selfIdentity();
  // A lock without an identity (an older version, or not Linux): the host name and pid are all
  // there is, judged as before.
  if (!info.boot) return info.host === me.host && !deps.isAlive(info.pid) ? `pid ${info.pid} is not running` : null;
  if (me.boot && me.pidns) {
    if (info.boot !== me.boot || info.pidns !== me.pidns || typeof info.start !== "number") return null;
    const start = (deps.startOf ?? procStartTime)(info.pid);
    if (start === undefined) return null;
    if (start === null) return `pid ${info.pid} is not running`;
    return start !== info.start ? `pid ${info.pid} is another process now` : null;
  }
  return null;
}

/**
 * Create `file` holding `content` and return it open, or null when it exists. The content is
 * written to a temp file first and hard-linked into place, so the lock never exists empty or
 * half-written (a holder killed between create and write would otherwise leave a lock nobody can
 * judge).
 */
async function createExclusive(file: string, content: string, now: number): Promise<FileHandle | null> {
  // A holder in another pid namespace (a container sharing agent-only/) cannot see our pid, so its
  // clean-up of stale temps can remove our temp between its creation and the link (ENOENT). That
  // is not a failure of agent-only/: write a new temp and try again.
  for (let attempt = 1; ; attempt++) {
    const r = await createExclusiveOnce(file, content, now);
    if (r !== "temp-removed") return r;
    if (attempt === 3) {
      throw new VrError("AGENT_DIR", `cannot create the lock ${file}: its temp file was removed three times in a row; nothing was changed`, {
        hint: "another process is deleting vault-render's temp files in agent-only/",
        exit: ExitCode.Environment,
      });
    }
  }
}

async function createExclusiveOnce(file: string, content: string, now: number): Promise<FileHandle | null | "temp-removed"> {
  const tmp = path.join(path.dirname(file), `${TEMP_PREFIX}${process.pid}-${randomBytes(6).toString("hex")}`);
  let linking = false;
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
    await fh.writeFile(content);
    // The first heartbeat, on the clock the waiters judge it by.
    await fh.utimes(now / 1000, now / 1000);
    await fh.sync();
    linking = true;
    await link(tmp, file);
    const held = fh;
    fh = undefined;
    return held;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return null;
    if (linking && (e as NodeJS.ErrnoException).code === "ENOENT") return "temp-removed";
    throw new VrError("AGENT_DIR", `cannot create the lock ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; nothing was changed`, {
      hint: "agent-only/ must be a writable directory with free space for vault-render",
      exit: ExitCode.Environment,
      cause: e,
    });
  } finally {
    await fh?.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
  }
}

async function tryCreate(file: string, content: string, now: number): Promise<boolean> {
  const fh = await createExclusive(file, content, now);
  await fh?.close().catch(() => undefined);
  return fh !== null;
}

async function readInfo(file: string): Promise<{ raw: string; info: LockInfo | null; mtimeMs: number } | null> {
  try {
    const [raw, st] = await Promise.all([readFile(file, "utf8"), stat(file)]);
    try {
      const info = JSON.parse(raw) as LockInfo;
      return { raw, info: info && typeof info === "object" && typeof info.pid === "number" ? info : null, mtimeMs: st.mtimeMs };
    } catch {
      return { raw, info: null, mtimeMs: st.mtimeMs };
    }
  } catch {
    return null;
  }
}

function describeHolder(cur: { info: LockInfo | null } | null): string {
  const i = cur?.info;
  return i ? `pid ${i.pid}${i.host && i.host !== hostname() ? ` on ${i.host}` : ""} (${i.command}, since ${i.started})` : "another process";
}

export class Lock {
  private readonly beat = new AbortController();

  private constructor(
    private readonly file: string,
    private readonly token: string,
    private readonly fh: FileHandle,
    deps: LockDeps,
  ) {
    void this.heartbeat(deps);
  }

  /** Refresh the lock's mtime while held (through the open file, so never someone else's lock). */
  private async heartbeat(deps: LockDeps): Promise<void> {
    const signal = this.beat.signal;
    while (!signal.aborted) {
      await deps.sleep(HEARTBEAT_MS, signal);
      if (signal.aborted) return;
      const t = deps.now() / 1000;
      await this.fh.utimes(t, t).catch(() => undefined);
    }
  }

  /**
   * Acquire the lock, waiting up to `waitMs`; throws VrError LOCKED (exit 4) after that, and
   * LOCK_ABORTED at once when `deps.signal` is aborted while waiting.
   */
  static async acquire(file: string, command: string, waitMs: number, deps: LockDeps): Promise<Lock> {
    const me: LockInfo = { ...(deps.self ?? selfIdentity()), started: new Date(deps.now()).toISOString(), command };
    const content = JSON.stringify(me) + "\n";
    const deadline = deps.now() + waitMs;
    let delay = 25;
    for (;;) {
      let fh = await createExclusive(file, content, deps.now());
      if (!fh && (await Lock.breakIfStale(file, deps))) fh = await createExclusive(file, content, deps.now());
      if (fh) return new Lock(file, content, fh, deps);
      if (deps.signal?.aborted) {
        throw new VrError("LOCK_ABORTED", `stopped while waiting for ${file}`, { exit: ExitCode.Locked });
      }
      if (deps.now() >= deadline) {
        const who = describeHolder(await readInfo(file));
        throw new VrError("LOCKED", `another vault-render run holds ${file}: ${who}; gave up after ${formatDuration(waitMs)}`, {
          hint: `wait for it to finish, or raise --lock-timeout; a lock whose holder died is recovered automatically (within ${formatDuration(STALE_MS)} when it ran in another container)`,
          exit: ExitCode.Locked,
        });
      }
      if (delay === 25 && deps.onWait) deps.onWait(describeHolder(await readInfo(file)));
      await deps.sleep(Math.min(delay, Math.max(1, deadline - deps.now())), deps.signal);
      delay = Math.min(delay * 2, 250);
    }
  }

  /** Break the lock if its holder is provably gone; true when it was removed. */
  private static async breakIfStale(file: string, deps: LockDeps): Promise<boolean> {
    const cur = await readInfo(file);
    if (!cur) return true;
    if (!staleReason(cur.info, deps.now() - cur.mtimeMs, deps)) return false;
    const breakFile = `${file}.break`;
    if (!(await tryCreate(breakFile, String(process.pid), deps.now()))) {
      // Someone else is breaking it; a break lock left by a crashed breaker expires quickly.
      const b = await readInfo(breakFile);
      if (b && deps.now() - b.mtimeMs > BREAK_STALE_MS) await unlink(breakFile).catch(() => undefined);
      return false;
    }
    try {
      // Judge again under the break lock: the same lock (content), still without a heartbeat.
      const again = await readInfo(file);
      if (!again) return true;
      const reason = again.raw === cur.raw ? staleReason(again.info, deps.now() - again.mtimeMs, deps) : null;
      if (!reason) return false;
      if (await unlink(file).then(() => true, () => false)) deps.onBreak?.(describeHolder(again), reason);
      return true;
    } finally {
      await unlink(breakFile).catch(() => undefined);
    }
  }

  /** Stop the heartbeat; remove the lock only if it is still ours. */
  async release(): Promise<void> {
    this.beat.abort();
    await this.fh.close().catch(() => undefined);
    const cur = await readInfo(this.file);
    if (cur && cur.raw === this.token) await unlink(this.file).catch(() => undefined);
  }
}
