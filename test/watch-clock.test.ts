/**
 * The watch loop driven by a fake Clock (in-process, against the Vault double over loopback):
 * every wait is one timer, a stop or reload ends a pending wait at once, nothing polls. Time only
 * moves when the test advances it; a loop that spins without waiting is caught by counting now().
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import type { Clock } from "../src/core/support/clock.js";
import { Lock, processAlive } from "../src/core/fs/lock.js";
import { createLogger } from "../src/core/support/log.js";
import { Redactor } from "../src/core/support/redact.js";
import type { FileWatcher, WatchOptions } from "../src/core/watch/watch.js";
import { Watcher } from "../src/core/watch/watch.js";
import type { Tree } from "./helpers.js";
import { baseLayout, makeTree } from "./helpers.js";

interface Timer {
  at: number;
  ms: number;
  resolve: () => void;
}

/** Virtual time. Counts sleep() calls, timers that ran out, and now() calls between advances. */
class FakeClock implements Clock {
  constructor(public t = Date.parse("2030-01-01T00:00:00Z")) {}
  timers: Timer[] = [];
  sleeps = 0;
  fired = 0;
  private nowCalls = 0;
  now = (): number => {
    // A loop that never waits calls now() without end (and starves the event loop): fail it.
    if (++this.nowCalls > 20_000) throw new Error("busy loop: now() called 20000 times while time stood still");
    return this.t;
  };
  random = (): number => 0.5;
  sleep = (ms: number, signal?: AbortSignal): Promise<void> => {
    this.sleeps++;
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const onAbort = () => {
        this.timers = this.timers.filter((x) => x !== timer);
        resolve();
      };
      const timer: Timer = {
        at: this.t + ms,
        ms,
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      this.timers.push(timer);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  };
  /** Move time forward, running out every timer due by then. */
  advance(ms: number): void {
    this.t += ms;
    this.nowCalls = 0;
    const due = this.timers.filter((x) => x.at <= this.t).sort((a, b) => a.at - b.at);
    this.timers = this.timers.filter((x) => x.at > this.t);
    for (const x of due) {
      this.fired++;
      x.resolve();
    }
  }
  /** The pending wait of at least `ms` (the watcher's backoff or interval), if any. */
  longWait(ms: number): Timer | undefined {
    return this.timers.find((x) => x.ms >= ms);
  }
}

/** The watcher's run() failing (e.g. the busy-loop detector) ends any wait of the test. */
let crashed: Error | undefined;
function start(w: Watcher): Promise<number> {
  const run = w.run();
  run.catch((e: unknown) => (crashed = e instanceof Error ? e : new Error(String(e))));
  return run;
}

/** Poll real time until `fn` holds (the watcher does real I/O between fake-clock waits). */
async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> {
  for (let i = 0; i < 2000; i++) {
    if (crashed) throw crashed;
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Settled yet? (without waiting for it) */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setTimeout(r, 20));
  return done;
}

let trees: Tree[] = [];
afterEach(async () => {
  crashed = undefined;
  await Promise.all(trees.map((t) => t.cleanup()));
  trees = [];
});

const MIN = 60_000;

async function setup(opts: Partial<WatchOptions> = {}, tree?: { t: Tree; clock: FakeClock }) {
  const t = tree?.t ?? (await makeTree());
  trees.push(t);
  t.double.kvPut("secret", "app", { password: "one" });
  if (!tree) await t.writeLayout(baseLayout());
  const clock = tree?.clock ?? new FakeClock();
  const lines: Array<Record<string, unknown>> = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split("\n")) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const redactor = new Redactor();
  const events: Array<{ paths: string[]; on: (ev: string, file: string) => void }> = [];
  const w = new Watcher({
    layoutFile: t.layoutFile,
    env: { VAULT_ADDR: t.double.url },
    lockTimeoutMs: 5 * MIN,
    log: createLogger({ level: "info", format: "json", out, redactor }),
    redactor,
    clock,
    print: () => undefined,
    noHooks: true,
    intervalMs: 5 * MIN,
    maxBackoffMs: 5 * MIN,
    firstBackoffMs: 5 * MIN,
    healIntervalMs: 10_000,
    debounceMs: 300,
    watchFiles: (paths, onEvent): FileWatcher => {
      events.push({ paths, on: onEvent });
      return { close: () => Promise.resolve() };
    },
    ...opts,
  });
  const failures = () => lines.filter((l) => typeof l.msg === "string" && l.msg.startsWith("pass failed")).length;
  return { t, clock, lines, w, events, failures };
}

describe("watch on a fake clock", () => {
  it("a 5-minute backoff is one timer: no wake-up for the heal scan or file events, and stop() ends it at once", async () => {
    const { t, clock, w, events, failures } = await setup();
    t.double.seal();
    const run = start(w);
    const backoff = await until("the first failure and its backoff", () => failures() === 1 && clock.longWait(4 * MIN));
    expect(backoff.at - clock.t).toBe(5 * MIN);
    const fired = clock.fired;
    // Four minutes pass (24 heal intervals) with file events on a managed file: still that one timer.
    for (let i = 0; i < 4; i++) {
      for (const e of events) if (e.paths.includes(t.publicDir)) e.on("change", path.join(t.publicDir, "app.env"));
      clock.advance(MIN);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(clock.longWait(4 * MIN)).toBe(backoff);
    // Only the debounce timers ran out; the backoff was never woken, and no pass ran.
    expect(clock.fired - fired).toBeLessThanOrEqual(4);
    expect(failures()).toBe(1);
    w.stop();
    expect(await run).toBe(0);
    expect(clock.timers).toEqual([]);
  });

  it("a backoff ends with one wake-up and one retry", async () => {
    const { t, clock, w, failures } = await setup();
    t.double.seal();
    const run = start(w);
    await until("the first failure", () => failures() === 1 && clock.longWait(4 * MIN));
    const fired = clock.fired;
    clock.advance(5 * MIN);
    await until("the retry failed", () => failures() === 2 && clock.longWait(4 * MIN));
    expect(clock.fired - fired).toBe(1);
    w.stop();
    expect(await run).toBe(0);
  });

  it("reload() (SIGHUP) during a backoff re-reads the layout and passes at once", async () => {
    const { t, clock, w, failures, lines } = await setup({ healIntervalMs: 10 * MIN });
    t.double.seal();
    const run = start(w);
    await until("the first failure", () => failures() === 1 && clock.longWait(4 * MIN));
    t.double.unseal();
    const now = clock.t;
    w.reload();
    await until("the file written", async () => (await readFile(path.join(t.publicDir, "app.env"), "utf8").catch(() => "")) === "DB_PASSWORD='one'\n");
    expect(clock.t).toBe(now);
    expect(lines.some((l) => l.msg === "layout re-read: passing now instead of waiting for the retry")).toBe(true);
    // Back to the idle wait (the interval), then a stop ends it at once.
    await until("idle", () => clock.longWait(4 * MIN));
    w.stop();
    expect(await run).toBe(0);
  });

  it("stop() while a pass waits for another run's lock ends the wait at once: no pass, exit 0", async () => {
    const { t, clock, w, lines } = await setup();
    const held = await Lock.acquire(path.join(t.agentDir, "lock"), "sync", 0, { now: clock.now, sleep: clock.sleep, isAlive: processAlive });
    const run = start(w);
    // The pass polls for the lock (a short sleep at a time, on the fake clock): let it wait a while.
    for (let i = 0; i < 20; i++) {
      await until("a lock-wait poll", () => clock.timers.some((x) => x.ms <= 250));
      clock.advance(250);
    }
    expect(await settled(run)).toBe(false);
    w.stop();
    expect(await run).toBe(0);
    expect(lines.some((l) => l.msg === "stopping: no pass (another run held the lock)")).toBe(true);
    expect(lines.some((l) => typeof l.msg === "string" && l.msg.startsWith("pass failed"))).toBe(false);
    await held.release();
  });

  it("stop() during the idle wait (a 5-minute interval) ends it at once", async () => {
    const { clock, w, t } = await setup({ healIntervalMs: 10 * MIN });
    const run = start(w);
    await until("idle after the first pass", async () => (await readFile(path.join(t.publicDir, "app.env"), "utf8").catch(() => "")) !== "" && clock.longWait(4 * MIN));
    w.stop();
    expect(await run).toBe(0);
    expect(clock.timers).toEqual([]);
  });

  it("a certificate still due after its pass (re-issue refused) is retried after a backoff, not in a loop of passes", async () => {
    const policy = `path "secret/data/*" { capabilities = ["read"] }\npath "sys/internal/ui/mounts/*" { capabilities = ["read"] }\npath "pki_int/issue/web" { capabilities = ["update"] }`;
    const t = await makeTree({ policy, tokenTtl: 3600 * 1000, tokenMaxTtl: 3600 * 2000 });
    t.double.mountPki("pki_int");
    t.double.addPkiRole("pki_int", "web", { allowedDomains: ["home.arpa"], allowSubdomains: true, maxTtl: 30 * 86400 });
    await t.writeLayout(baseLayout({ outputs: [{ format: "pki", dir: "certs/web", mount: "pki_int", role: "web", commonName: "web.home.arpa", ttl: "72h", renewBefore: "24h" }] }));
    // The certificates' times come from the double's clock (real time): start the fake one there.
    const { clock, w } = await setup({ intervalMs: 1000 * 3600_000, healIntervalMs: 1000 * 3600_000 }, { t, clock: new FakeClock(Date.now()) });
    const issued = () => t.double.countRequests({ path: "pki_int/issue/web" });
    const run = start(w);
    const idle = await until("the certificate issued, then idle", () => issued() === 1 && clock.longWait(40 * 3600_000));
    // Its renewal is due in 48 h; from now on Vault refuses to issue.
    t.double.addPolicy("app", `path "secret/data/*" { capabilities = ["read"] }\npath "sys/internal/ui/mounts/*" { capabilities = ["read"] }`);
    clock.advance(idle.at - clock.t);
    const retry = await until("the refused renewal, then a wait", () => issued() === 2 && clock.longWait(60_000));
    expect(retry.at - clock.t).toBeGreaterThanOrEqual(4 * MIN);
    expect(retry.at - clock.t).toBeLessThanOrEqual(6 * MIN);
    expect(issued()).toBe(2);
    // At the retry it is attempted once more, and again only after a wait.
    clock.advance(retry.at - clock.t);
    await until("the second retry, then a wait", () => issued() === 3 && clock.longWait(60_000));
    expect(issued()).toBe(3);
    w.stop();
    expect(await run).toBe(0);
  });
});
