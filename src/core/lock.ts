/**
 * A lock file in agent-only/ makes overlapping runs (cron plus a manual run, watch plus rotate)
 * safe. Created with O_EXCL; a lock whose holder process is gone is broken under a second,
 * short-lived "break" lock so two waiters never both break it.
 */
import { constants as C } from "node:fs";
import { link, open, readFile, stat, unlink } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { TEMP_PREFIX } from "./paths.js";
import { hostname } from "node:os";
import { ExitCode, VrError } from "./errors.js";
import { formatDuration } from "./duration.js";

interface LockInfo {
  pid: number;
  host: string;
  started: string;
  command: string;
}

export interface LockDeps {
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  isAlive: (pid: number) => boolean;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Create `file` holding `content`, or return false when it exists. The content is written to a
 * temp file first and hard-linked into place, so the lock never exists empty or half-written
 * (a holder killed between create and write would otherwise leave a lock nobody can judge).
 */
async function tryCreate(file: string, content: string): Promise<boolean> {
  const tmp = path.join(path.dirname(file), `${TEMP_PREFIX}${process.pid}-${randomBytes(6).toString("hex")}`);
  try {
    const fh = await open(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
    try {
      await fh.writeFile(content);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await link(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw new VrError("AGENT_DIR", `cannot create the lock ${file}: ${(e as NodeJS.ErrnoException).code}`, {
      hint: "agent-only/ must exist and be writable by vault-render",
      exit: ExitCode.Usage,
    });
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

async function readInfo(file: string): Promise<{ raw: string; info: LockInfo | null } | null> {
  try {
    const raw = await readFile(file, "utf8");
    try {
      return { raw, info: JSON.parse(raw) as LockInfo };
    } catch {
      return { raw, info: null };
    }
  } catch {
    return null;
  }
}

export class Lock {
  private constructor(private readonly file: string, private readonly token: string) {}

  /** Acquire the lock, waiting up to `waitMs`; throws VrError LOCKED (exit 4) after that. */
  static async acquire(file: string, command: string, waitMs: number, deps: LockDeps): Promise<Lock> {
    const me: LockInfo = { pid: process.pid, host: hostname(), started: new Date(deps.now()).toISOString(), command };
    const content = JSON.stringify(me) + "\n";
    const deadline = deps.now() + waitMs;
    let delay = 25;
    for (;;) {
      if (await tryCreate(file, content)) return new Lock(file, content);
      await Lock.breakIfStale(file, deps);
      if (await tryCreate(file, content)) return new Lock(file, content);
      if (deps.now() >= deadline) {
        const cur = await readInfo(file);
        const who = cur?.info ? `pid ${cur.info.pid} (${cur.info.command}, since ${cur.info.started})` : "another process";
        throw new VrError("LOCKED", `another vault-render run holds ${file}: ${who}; gave up after ${formatDuration(waitMs)}`, {
          hint: "wait for it to finish, or raise --lock-timeout; a lock whose process died is recovered automatically",
          exit: ExitCode.Locked,
        });
      }
      await deps.sleep(Math.min(delay, Math.max(1, deadline - deps.now())));
      delay = Math.min(delay * 2, 250);
    }
  }

  private static async breakIfStale(file: string, deps: LockDeps): Promise<void> {
    const cur = await readInfo(file);
    if (!cur) return;
    const dead = cur.info ? cur.info.host === hostname() && !deps.isAlive(cur.info.pid) : await olderThan(file, deps, 60_000);
    if (!dead) return;
    const breakFile = `${file}.break`;
    if (!(await tryCreate(breakFile, String(process.pid)))) {
      // Someone else is breaking it; a break lock left by a crashed breaker expires quickly.
      if (await olderThan(breakFile, deps, 10_000)) await unlink(breakFile).catch(() => undefined);
      return;
    }
    try {
      const again = await readInfo(file);
      if (again && again.raw === cur.raw) await unlink(file).catch(() => undefined);
    } finally {
      await unlink(breakFile).catch(() => undefined);
    }
  }

  /** Release only if the lock is still ours. */
  async release(): Promise<void> {
    const cur = await readInfo(this.file);
    if (cur && cur.raw === this.token) await unlink(this.file).catch(() => undefined);
  }
}

async function olderThan(file: string, deps: LockDeps, ms: number): Promise<boolean> {
  try {
    const st = await stat(file);
    return deps.now() - st.mtimeMs > ms;
  } catch {
    return false;
  }
}
