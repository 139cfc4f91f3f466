/**
 * `vault-render watch`: the real CLI as a long-running child process against the double.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { chmod, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Tree } from "./helpers.js";
import { BIN, HOOKS_BIN, baseLayout, makeTree } from "./helpers.js";
import { wantsHooks } from "./support/test-hooks.js";
import { scaled } from "./support/scale.js";
import { systemClock } from "../src/core/support/clock.js";
import { Lock, processAlive } from "../src/core/fs/lock.js";

interface Watch {
  child: ChildProcess;
  lines: Array<Record<string, unknown>>;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

let trees: Tree[] = [];
let watches: Watch[] = [];
afterEach(async () => {
  for (const w of watches) if (w.child.exitCode === null) w.child.kill("SIGKILL");
  await Promise.all(watches.map((w) => w.exited));
  watches = [];
  await Promise.all(trees.map((t) => t.cleanup()));
  trees = [];
});

function startWatch(t: Tree, args: string[] = [], extraEnv: Record<string, string> = {}): Watch {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("VAULT_")) env[k] = v;
  env.VAULT_ADDR = t.double.url;
  Object.assign(env, extraEnv);
  // The production bin unless the test sets a test hook (VAULT_RENDER_TEST_FIRST_BACKOFF).
  const entry = wantsHooks(extraEnv) ? HOOKS_BIN : BIN;
  const child = spawn(process.execPath, [entry, "--layout", t.layoutFile, "watch", "--heal-interval", "500ms", "--debounce", "100ms", "--max-backoff", "2s", ...args], { cwd: t.dir, env, stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  const lines: Array<Record<string, unknown>> = [];
  child.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
    for (const l of d.toString().split("\n")) {
      try {
        if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        // not JSON: kept in stderr()
      }
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("close", (code, signal) => resolve({ code, signal })));
  const w = { child, lines, stderr: () => err, exited };
  watches.push(w);
  return w;
}

/** Poll `fn` until it holds, for at most `timeoutMs` (scaled by VR_TEST_SCALE; a limit, never a measurement). */
async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 8000): Promise<T> {
  const deadline = Date.now() + scaled(timeoutMs);
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}


/** The exit, or "still running" if it has not exited within `ms` (scaled; a limit, never a measurement). */
function exitWithin(w: Watch, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | "still running"> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<"still running">((r) => (timer = setTimeout(() => r("still running"), scaled(ms))));
  return Promise.race([w.exited, limit]).finally(() => clearTimeout(timer));
}

const read = (t: Tree, f: string) => readFile(path.join(t.publicDir, f), "utf8").catch(() => undefined);
const passes = (w: Watch) => w.lines.filter((l) => typeof l.msg === "string" && (l.msg).startsWith("sync: ")).length;

async function tree(): Promise<Tree> {
  const t = await makeTree();
  trees.push(t);
  t.double.kvPut("secret", "app", { password: "one" });
  await t.writeLayout(baseLayout());
  return t;
}

describe("watch", () => {
  it("applies a layout edit within a second or two, and rejects an invalid edit while the old layout keeps serving", async () => {
    const t = await tree();
    const w = startWatch(t);
    await until("first pass", async () => (await read(t, "app.env")) === "DB_PASSWORD='one'\n");
    const l = baseLayout();
    (l.outputs as unknown[]).push({ file: "extra/password", format: "raw", value: "app.password" });
    await t.writeLayout(l);
    // The interval is 5 min and a heal pass keeps the layout it has: only the edit's file event can
    // bring the new output, within the (scaled) limit of until().
    await until("layout edit applied", async () => (await read(t, "extra/password")) === "one");
    // An invalid edit is reported; the last good layout keeps running (and keeps healing).
    await writeFile(t.layoutFile, JSON.stringify({ ...l, outputs: [{ file: "../escape", format: "raw", value: "app.password" }] }));
    await until("invalid layout reported", () => w.stderr().includes("the edited layout is invalid and was not applied"));
    expect(w.stderr()).toContain("$.outputs[0].file");
    await rm(path.join(t.publicDir, "extra/password"));
    await until("old layout still serving", async () => (await read(t, "extra/password")) === "one");
    w.child.kill("SIGTERM");
    expect(await w.exited).toEqual({ code: 0, signal: null });
  });

  it("restores a deleted, a hand-edited and a chmod'ed managed file, and ignores unmanaged files", async () => {
    const t = await tree();
    const w = startWatch(t);
    await until("first pass", async () => (await read(t, "app.env")) !== undefined);
    await writeFile(path.join(t.publicDir, "mine.txt"), "operator file");
    await rm(path.join(t.publicDir, "app.env"));
    await until("deleted file restored", async () => (await read(t, "app.env")) === "DB_PASSWORD='one'\n");
    await writeFile(path.join(t.publicDir, "app.env"), "DB_PASSWORD='tampered'\n");
    await until("edited file restored", async () => (await read(t, "app.env")) === "DB_PASSWORD='one'\n");
    await chmod(path.join(t.publicDir, "app.env"), 0o600);
    await until("mode restored", async () => ((await stat(path.join(t.publicDir, "app.env"))).mode & 0o777) === 0o644);
    expect(await read(t, "mine.txt")).toBe("operator file");
    expect(w.stderr()).toMatch(/changed, deleted or chmod'ed by something else/);
    w.child.kill("SIGTERM");
    expect((await w.exited).code).toBe(0);
  });

  it("survives a Vault outage with bounded requests and recovers on its own", async () => {
    const t = await tree();
    const w = startWatch(t, ["--interval", "1s"]);
    await until("first pass", async () => (await read(t, "app.env")) !== undefined);
    t.double.seal();
    t.double.clearRequests();
    // The outage lasts 5 s of product time (measured against the watch's own backoff, not scaled).
    await new Promise((r) => setTimeout(r, 5000));
    const during = t.double.requests.length;
    t.double.kvPut("secret", "app", { password: "two" });
    t.double.unseal();
    // 5 s down, backoff 1 s, 2 s (cap 2 s), 3 tries per pass: a bounded number of requests, no storm.
    expect(during).toBeGreaterThan(0);
    expect(during).toBeLessThanOrEqual(15);
    expect(await read(t, "app.env")).toBe("DB_PASSWORD='one'\n");
    // Recovered on its own: the next retry after the unseal, within the (scaled) limit.
    await until("recovered", async () => (await read(t, "app.env")) === "DB_PASSWORD='two'\n", 10_000);
    expect(w.stderr()).toMatch(/keeping the last good files, retrying in/);
    // The backoff honoured its cap (--max-backoff 2s, jitter at most +20%) at every failure.
    const retries = w.lines.filter((l) => typeof l.msg === "string" && l.msg.startsWith("pass failed")).map((l) => l.retryInMs);
    expect(retries.length).toBeGreaterThan(0);
    for (const ms of retries) expect(ms).toBeLessThanOrEqual(2000 * 1.2);
    w.child.kill("SIGTERM");
    expect((await w.exited).code).toBe(0);
  });

  it("a concurrent manual sync completes (the lock is per pass); SIGTERM leaves no lock and no temp files", async () => {
    const t = await tree();
    t.double.setLatency(50);
    const w = startWatch(t, ["--interval", "1s"]);
    await until("first pass", async () => (await read(t, "app.env")) !== undefined);
    // A second process against the daemon's lock.
    const beforeManual = new Date().toISOString();
    const manual = await t.run(["sync", "--lock-timeout", "10s"], { mode: "child" });
    expect(manual.code).toBe(0);
    await until("another pass", () => passes(w) >= 2, 10_000);
    w.child.kill("SIGTERM");
    expect((await w.exited).code).toBe(0);
    await expect(stat(path.join(t.agentDir, "lock"))).rejects.toThrow(/ENOENT/);
    expect((await readdir(t.publicDir)).filter((n) => n.startsWith(".vault-render.tmp-"))).toEqual([]);
    expect(await read(t, "app.env")).toBe("DB_PASSWORD='one'\n");
    const state = JSON.parse(await readFile(path.join(t.agentDir, "state.json"), "utf8")) as { lastSuccessAt: string };
    // Current: written after the watch's first pass, by the manual sync or a later pass (an order of events, not a duration).
    expect(state.lastSuccessAt >= beforeManual).toBe(true);
  });

  it("--metrics-file: written after each pass, a failed one too (Vault sealed: exit code 3, output status 0), 0644, no temp left", async () => {
    const t = await tree();
    const prom = path.join(t.dir, "vault_render.prom");
    const w = startWatch(t, ["--interval", "1s", "--metrics-file", prom]);
    const metric = async (name: string) => {
      const text = await readFile(prom, "utf8").catch(() => "");
      const m = new RegExp(`^${name.replace(/[{}"]/g, "\\$&")} (\\S+)$`, "m").exec(text);
      return m ? Number(m[1]) : undefined;
    };
    await until("metrics of a good pass", async () => (await metric('vault_render_output_status{file="app.env"}')) === 1);
    expect(await metric("vault_render_last_run_exit_code")).toBe(0);
    expect((await stat(prom)).mode & 0o777).toBe(0o644);
    const success = await metric("vault_render_last_success_timestamp_seconds");
    t.double.seal();
    await until("metrics of a failed pass", async () => (await metric("vault_render_last_run_exit_code")) === 3, 10_000);
    expect(await metric('vault_render_output_status{file="app.env"}')).toBe(0);
    expect(await metric("vault_render_last_success_timestamp_seconds")).toBe(success);
    expect((await readdir(t.dir)).filter((n) => n.includes(".vault-render.tmp-"))).toEqual([]);
    w.child.kill("SIGTERM");
    expect((await w.exited).code).toBe(0);
  });

  it("logs one JSON line per pass with counts when not on a TTY", async () => {
    const t = await tree();
    const w = startWatch(t);
    await until("first pass", () => passes(w) >= 1);
    const line = w.lines.find((l) => typeof l.msg === "string" && (l.msg).startsWith("sync: "));
    expect(line).toMatchObject({ created: 1, updated: 0, failed: 0 });
    w.child.kill("SIGINT");
    expect((await w.exited).code).toBe(0);
  });

  it("SIGTERM in the middle of a pass lets it finish: consistent files, no lock, no temp files, exit 0", async () => {
    const t = await tree();
    const w = startWatch(t);
    await until("first pass", () => passes(w) >= 1);
    // The summary is logged under the lock: wait for the first pass to release it, so the lock
    // seen below is the next pass's.
    await until("first pass released the lock", async () => stat(path.join(t.agentDir, "lock")).then(() => false, () => true));
    t.double.setLatency(400);
    t.double.kvPut("secret", "app", { password: "two" });
    const l = baseLayout();
    (l.outputs as unknown[]).push({ file: "b/password", format: "raw", value: "app.password" });
    await t.writeLayout(l);
    // Wait until the pass has started (the lock is taken), then stop.
    await until("pass running", async () => stat(path.join(t.agentDir, "lock")).then(() => true, () => false));
    w.child.kill("SIGTERM");
    expect(await w.exited).toEqual({ code: 0, signal: null });
    await expect(stat(path.join(t.agentDir, "lock"))).rejects.toThrow(/ENOENT/);
    expect(await read(t, "app.env")).toBe("DB_PASSWORD='two'\n");
    expect(await read(t, "b/password")).toBe("two");
    expect((await readdir(t.publicDir)).filter((n) => n.startsWith(".vault-render.tmp-"))).toEqual([]);
  });

  it("SIGHUP re-reads the layout and runs a pass; the daemon keeps running", async () => {
    const t = await tree();
    const w = startWatch(t, ["--interval", "1h"]);
    await until("first pass", () => passes(w) >= 1);
    w.child.kill("SIGHUP");
    await until("a pass after SIGHUP", () => passes(w) >= 2);
    expect(w.child.exitCode).toBeNull();
    w.child.kill("SIGTERM");
    expect((await w.exited).code).toBe(0);
  });

  it("renews a lease when its lifecycle calls for it, not on the (long) interval", async () => {
    const t = await tree();
    t.double.addPolicy("app", `path "database/creds/app" { capabilities = ["read"] }\npath "sys/leases/*" { capabilities = ["update"] }`);
    t.double.mountDatabase("database");
    t.double.addDbRole("database", "app", { defaultTtl: 4, maxTtl: 600 });
    await t.writeLayout(baseLayout({ sources: { db: { type: "lease", path: "database/creds/app" } }, outputs: [{ file: "db.env", format: "env", keys: { U: "db.username", P: "db.password" } }] }));
    const w = startWatch(t, ["--interval", "1h"]);
    await until("first pass", () => passes(w) >= 1);
    const first = await read(t, "db.env");
    await until("lease renewed", () => t.double.countRequests({ path: "sys/leases/renew" }) >= 1, 8000);
    expect(t.double.countRequests({ path: "database/creds/app" })).toBe(1);
    expect(await read(t, "db.env")).toBe(first);
    w.child.kill("SIGTERM");
    expect((await w.exited).code).toBe(0);
  });

  describe("signals take effect at once in every state", () => {
    // A first retry of 5 min (test seam): the backoff is far longer than any limit below. A long
    // heal interval: nothing else is due, the backoff is the only wait.
    const longBackoff = { VAULT_RENDER_TEST_FIRST_BACKOFF: "5m" };

    it("SIGTERM during a 5-minute backoff (Vault down) exits 0 at once", async () => {
      const t = await tree();
      t.double.seal();
      const w = startWatch(t, ["--max-backoff", "5m", "--heal-interval", "1h"], longBackoff);
      await until("the first failure", () => /retrying in [23]\d\d s/.test(w.stderr()), 10_000);
      w.child.kill("SIGTERM");
      expect(await exitWithin(w, 10_000)).toEqual({ code: 0, signal: null });
      expect(w.lines.filter((l) => typeof l.msg === "string" && (l.msg).startsWith("pass failed"))).toHaveLength(1);
      await expect(stat(path.join(t.agentDir, "lock"))).rejects.toThrow(/ENOENT/);
    });

    it("SIGHUP during a 5-minute backoff re-reads the layout and passes at once", async () => {
      const t = await tree();
      t.double.seal();
      const w = startWatch(t, ["--max-backoff", "5m", "--heal-interval", "1h"], longBackoff);
      await until("the first failure", () => /retrying in [23]\d\d s/.test(w.stderr()), 10_000);
      t.double.unseal();
      w.child.kill("SIGHUP");
      await until("the pass after SIGHUP", async () => (await read(t, "app.env")) === "DB_PASSWORD='one'\n", 10_000);
      expect(w.stderr()).toContain("layout re-read: passing now instead of waiting for the retry");
      w.child.kill("SIGTERM");
      expect(await exitWithin(w, 10_000)).toEqual({ code: 0, signal: null });
    });

    it("SIGTERM while a pass waits for another run's lock exits 0 at once, without a pass", async () => {
      const t = await tree();
      const held = await Lock.acquire(path.join(t.agentDir, "lock"), "sync", 0, { now: systemClock.now, sleep: systemClock.sleep, isAlive: processAlive });
      try {
        const w = startWatch(t, ["--lock-timeout", "5m"]);
        await until("waiting for the lock", () => w.stderr().includes(`waiting for the lock held by pid ${process.pid} (sync`), 10_000);
        w.child.kill("SIGTERM");
        expect(await exitWithin(w, 10_000)).toEqual({ code: 0, signal: null });
        expect(w.stderr()).toContain("stopping: no pass (another run held the lock)");
        expect(await read(t, "app.env")).toBeUndefined();
      } finally {
        await held.release();
      }
    });
  });

  it("duration flags are parsed like --lock-timeout and named in the error; a non-positive interval is refused (exit 2)", async () => {
    const t = await tree();
    const cases: Array<[string[], RegExp]> = [
      [["--interval", "0"], /^vault-render: --interval: "0" must be longer than 0/],
      [["--interval", "0s"], /^vault-render: --interval: "0s" must be longer than 0/],
      [["--max-backoff", "0ms"], /^vault-render: --max-backoff: "0ms" must be longer than 0/],
      [["--heal-interval", "soon"], /^vault-render: --heal-interval: "soon" is not a duration \(e\.g\. 30s, 2m\)/],
      [["--debounce", "-1s"], /^vault-render: --debounce: "-1s" is not a duration/],
      [["--lock-timeout", "x"], /^vault-render: --lock-timeout: "x" is not a duration/],
    ];
    for (const [args, re] of cases) {
      const r = await t.run(["watch", ...args]);
      expect({ args, code: r.code, lines: r.stderr.trim().split("\n").length }).toEqual({ args, code: 2, lines: 1 });
      expect(r.stderr).toMatch(re);
    }
    expect(t.double.requests).toHaveLength(0);
  });
});
