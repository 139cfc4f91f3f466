/**
 * The run lock in containers (in-process, real files, a fake clock): host name and pid prove
 * nothing there, so a lock is judged by its heartbeat (the file's mtime, refreshed by the holder)
 * and, when it comes from this boot and this pid namespace, by the holder's pid and start time.
 */
import { mkdtemp, rm, stat, unlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { LockDeps } from "../src/core/fs/lock.js";
import { HEARTBEAT_MS, Lock, STALE_MS, processAlive, selfIdentity } from "../src/core/fs/lock.js";

/** Virtual time shared by holder and waiters; timers run out only when the test advances it. */
class FakeTime {
  t = Date.parse("2030-01-01T00:00:00Z");
  timers: Array<{ at: number; resolve: () => void }> = [];
  now = (): number => this.t;
  sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
    new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const timer = { at: this.t + ms, resolve };
      this.timers.push(timer);
      signal?.addEventListener(
        "abort",
        () => {
          this.timers = this.timers.filter((x) => x !== timer);
          resolve();
        },
        { once: true },
      );
    });
  async advance(ms: number): Promise<void> {
    this.t += ms;
    const due = this.timers.filter((x) => x.at <= this.t);
    this.timers = this.timers.filter((x) => x.at > this.t);
    for (const x of due) x.resolve();
    // Let the woken heartbeat write its mtime.
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 5));
  }
}

let dir: string;
let file: string;
let time: FakeTime;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "vr-lock-"));
  file = path.join(dir, "lock");
  time = new FakeTime();
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const deps = (extra: Partial<LockDeps> = {}): LockDeps => ({ now: time.now, sleep: time.sleep, isAlive: processAlive, ...extra });
const me = selfIdentity();
const linux = me.boot !== undefined;

/** A lock as another process (container) left it, with its heartbeat `ageMs` old. */
async function leftLock(who: Record<string, unknown>, ageMs: number): Promise<void> {
  await writeFile(file, JSON.stringify({ started: new Date(time.t - ageMs).toISOString(), command: "sync", ...who }) + "\n");
  const t = (time.t - ageMs) / 1000;
  await utimes(file, t, t);
}

async function tryAcquire(d: LockDeps = deps()): Promise<Lock | string> {
  try {
    return await Lock.acquire(file, "sync", 0, d);
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

describe.runIf(linux)("lock staleness in containers", () => {
  it("(a) a lock from another container (other host name and pid namespace) whose holder died: respected while its heartbeat is fresh, broken once it is older than the bound", async () => {
    // pid 1 runs here too: pid and host prove nothing across containers.
    const other = { pid: 1, host: "ctr-recreated-7f3a", boot: me.boot, pidns: "pid:[4026599999]", start: 4242 };
    await leftLock(other, 0);
    expect(await tryAcquire()).toBe("LOCKED");
    await time.advance(STALE_MS - 1000);
    expect(await tryAcquire()).toBe("LOCKED");
    await time.advance(2000);
    const lock = await tryAcquire();
    expect(lock).toBeInstanceOf(Lock);
    await (lock as Lock).release();
    await expect(stat(file)).rejects.toThrow(/ENOENT/);
  });

  it("(a) a live holder in another container keeps its lock far beyond the bound (heartbeat); when it dies the lock is broken after the bound", async () => {
    let dead = false;
    // The holder's timers stop for good when it "dies" (its heartbeat no longer runs).
    const holderSleep = (ms: number, signal?: AbortSignal) => (dead ? new Promise<void>(() => undefined) : time.sleep(ms, signal));
    const holder = await Lock.acquire(file, "watch", 0, deps({ sleep: holderSleep, self: { pid: 7, host: "ctr-a", boot: me.boot, pidns: "pid:[4026511111]", start: 99 } }));
    for (let i = 0; i < (5 * STALE_MS) / HEARTBEAT_MS; i++) await time.advance(HEARTBEAT_MS);
    expect(await tryAcquire()).toBe("LOCKED");
    expect((await stat(file)).mtimeMs).toBe(time.t);
    dead = true;
    await time.advance(HEARTBEAT_MS); // its last heartbeat
    await time.advance(STALE_MS - HEARTBEAT_MS);
    expect(await tryAcquire()).toBe("LOCKED");
    await time.advance(HEARTBEAT_MS + 1000);
    const lock = await tryAcquire();
    expect(lock).toBeInstanceOf(Lock);
    await (lock as Lock).release();
    // The dead holder's late release does not remove someone else's lock.
    const next = (await tryAcquire()) as Lock;
    await holder.release();
    await expect(stat(file)).resolves.toBeTruthy();
    await next.release();
  });

  it("(b) a lock naming this very pid (a restarted container reuses it) from another process start is stale at once", async () => {
    await leftLock({ pid: process.pid, host: me.host, boot: me.boot, pidns: me.pidns, start: (me.start as number) - 1 }, 0);
    const lock = await tryAcquire();
    expect(lock).toBeInstanceOf(Lock);
    await (lock as Lock).release();
  });

  it("(b) a lock naming this pid from another boot is not trusted by pid: respected while fresh, stale after the bound", async () => {
    await leftLock({ pid: process.pid, host: me.host, boot: "00000000-0000-4000-8000-000000000000", pidns: me.pidns, start: me.start }, 0);
    expect(await tryAcquire()).toBe("LOCKED");
    await time.advance(STALE_MS + 1000);
    const lock = await tryAcquire();
    expect(lock).toBeInstanceOf(Lock);
    await (lock as Lock).release();
  });

  it("a lock of a live process of this pid namespace (same pid and start time) is respected; of a dead pid, broken at once", async () => {
    await leftLock({ pid: process.pid, host: "whatever", boot: me.boot, pidns: me.pidns, start: me.start }, 0);
    expect(await tryAcquire()).toBe("LOCKED");
    await unlink(file);
    await leftLock({ pid: 2 ** 22 + 12345, host: "whatever", boot: me.boot, pidns: me.pidns, start: 1 }, 0);
    const lock = await tryAcquire();
    expect(lock).toBeInstanceOf(Lock);
    await (lock as Lock).release();
  });

  it("an unparsable lock is broken only once it is older than the bound", async () => {
    await writeFile(file, "{not json");
    const t = time.t / 1000;
    await utimes(file, t, t);
    expect(await tryAcquire()).toBe("LOCKED");
    await time.advance(STALE_MS + 1000);
    expect(await tryAcquire()).toBeInstanceOf(Lock);
  });

  it("the heartbeat refreshes only its own lock file, and release stops it", async () => {
    const lock = (await tryAcquire()) as Lock;
    await time.advance(HEARTBEAT_MS);
    expect((await stat(file)).mtimeMs).toBe(time.t);
    // Someone broke it and another run holds a new lock under the same name.
    await unlink(file);
    await leftLock({ pid: process.pid, host: me.host, boot: me.boot, pidns: me.pidns, start: me.start, command: "rotate" }, 5000);
    const mtime = (await stat(file)).mtimeMs;
    await time.advance(HEARTBEAT_MS);
    expect((await stat(file)).mtimeMs).toBe(mtime);
    await lock.release();
    await expect(stat(file)).resolves.toBeTruthy();
    expect(time.timers).toEqual([]);
  });

  it("a wait for the lock ends at once when its signal is aborted (LOCK_ABORTED)", async () => {
    const holder = (await tryAcquire()) as Lock;
    const ctl = new AbortController();
    const waiting = Lock.acquire(file, "watch", 5 * 60_000, deps({ signal: ctl.signal })).then(
      () => "acquired",
      (e: { code?: string }) => e.code,
    );
    await time.advance(1000);
    ctl.abort();
    expect(await waiting).toBe("LOCK_ABORTED");
    await holder.release();
  });
});
