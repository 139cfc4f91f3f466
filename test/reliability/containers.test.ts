/**
 * The lock across containers (docs/operations.md "The lock in containers"): runs of the real CLI
 * in their own pid and UTS namespaces (`unshare`, as Docker gives each container), sharing one
 * tree. A recreated container has another host name, a restarted one reuses pids (pid 1 again):
 * neither may keep a dead holder's lock for ever, and a live holder elsewhere is never broken.
 * Needs root and unshare (skipped otherwise).
 */
import { execFileSync, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { readFile, readlink, stat, utimes } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { STALE_MS } from "../../src/core/fs/lock.js";
import { BIN, baseLayout, makeTree } from "../helpers.js";
import type { Tree } from "../helpers.js";
import { childEnv, sleep, tempFiles } from "./support.js";

const canUnshare = (() => {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync("unshare", ["--uts", "--pid", "--fork", "--mount-proc", "sh", "-c", "hostname probe"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();
console.log(`containers: pid/UTS namespaces ${canUnshare ? "available" : "NOT available (skipped)"}`);

let trees: Tree[] = [];
const started: ChildProcess[] = [];
afterEach(async () => {
  for (const c of started.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await Promise.all(trees.map((x) => x.cleanup()));
  trees = [];
});

interface Run {
  child: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

/** The CLI as the first process (pid 1) of a new "container": own pid namespace and host name. */
function inContainer(t: Tree, host: string, args: string[]): Run {
  const child = spawn("unshare", ["--uts", "--pid", "--fork", "--mount-proc", "sh", "-c", `hostname ${host} && exec "$0" "$@"`, process.execPath, BIN, "--layout", t.layoutFile, ...args], {
    cwd: t.dir,
    env: childEnv({ VAULT_ADDR: t.double.url }),
    stdio: ["ignore", "ignore", "pipe"],
  });
  started.push(child);
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stderr }));
  });
  return { child, done };
}

/** kill -9 the container's pid 1 (the CLI) from outside, as `docker kill` does. */
function killContainer(r: Run): void {
  const pid = r.child.pid as number;
  const inner = Number(execFileSync("cat", [`/proc/${pid}/task/${pid}/children`]).toString().trim().split(/\s+/)[0]);
  process.kill(inner, "SIGKILL");
}

async function setup(hook?: Record<string, unknown>): Promise<Tree> {
  const t = await makeTree();
  trees.push(t);
  t.double.kvPut("secret", "app", { password: "v0" });
  await t.writeLayout(baseLayout({ ...(hook ? { hooks: { h: hook } } : {}), outputs: [{ file: "app.env", format: "env", keys: { DB_PASSWORD: "app.password" }, ...(hook ? { hooks: ["h"] } : {}) }] }));
  expect((await t.run(["sync", "--no-hooks"])).code).toBe(0);
  return t;
}

async function waitForLock(t: Tree): Promise<{ pid: number; host: string; pidns?: string }> {
  const lockFile = path.join(t.agentDir, "lock");
  for (let w = 0; w < 1000 && !(await stat(lockFile).then(() => true, () => false)); w++) await sleep(10);
  return JSON.parse(await readFile(lockFile, "utf8")) as { pid: number; host: string; pidns?: string };
}

/** Make the lock's heartbeat look older than the staleness bound (time passing, without waiting). */
async function ageLock(t: Tree): Promise<void> {
  const past = (Date.now() - STALE_MS - 5000) / 1000;
  await utimes(path.join(t.agentDir, "lock"), past, past);
}

async function consistent(t: Tree, value: string): Promise<void> {
  expect(await readFile(path.join(t.publicDir, "app.env"), "utf8")).toBe(`DB_PASSWORD='${value}'\n`);
  for (const f of ["lock", "lock.break"]) await expect(stat(path.join(t.agentDir, f))).rejects.toThrow(/ENOENT/);
  expect(await tempFiles(t.dir)).toEqual([]);
}

describe.runIf(canUnshare)("the lock across containers", () => {
  it("(a) a holder killed -9 in a container with another host name: its lock is respected while its heartbeat is fresh, broken once it is older than the bound", async () => {
    const t = await setup();
    t.double.kvPut("secret", "app", { password: "v1" });
    t.double.setLatency(3000);
    const holder = inContainer(t, "ctr-gone", ["sync"]);
    const info = await waitForLock(t);
    expect(info).toMatchObject({ pid: 1, host: "ctr-gone" });
    expect(info.pidns).not.toBe(await readlink("/proc/self/ns/pid"));
    killContainer(holder);
    expect((await holder.done).code).not.toBe(0);
    t.double.setLatency(0);
    const early = await t.run(["sync", "--lock-timeout", "300ms"]);
    expect(early.code).toBe(4);
    expect(early.stderr).toMatch(/holds .*lock: pid 1 on ctr-gone \(sync, since .*\); gave up after 300ms/);
    await ageLock(t);
    const r = await t.run(["sync", "-v"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/removed the stale lock of pid 1 on ctr-gone \(sync, since .*\): no heartbeat for 2\ds/);
    await consistent(t, "v1");
  }, 60_000);

  it("(b) a restarted container whose new run gets the dead holder's pid (pid 1 again, same host name): not mistaken for a live holder: broken at once (its pid namespace number reused, pid 1 now another process) or once its heartbeat is older than the bound", async () => {
    const t = await setup();
    t.double.kvPut("secret", "app", { password: "v2" });
    t.double.setLatency(3000);
    const holder = inContainer(t, "ctr-app", ["sync"]);
    expect(await waitForLock(t)).toMatchObject({ pid: 1, host: "ctr-app" });
    killContainer(holder);
    expect((await holder.done).code).not.toBe(0);
    t.double.setLatency(0);
    // The restarted container's run is pid 1, as the dead holder was. If the kernel gave the new
    // pid namespace the dead one's number, the lock's pid is looked up here: pid 1 is this run,
    // with another start time, so the lock is stale at once. Otherwise its heartbeat decides.
    let r = await inContainer(t, "ctr-app", ["sync", "-v", "--lock-timeout", "300ms"]).done;
    if (r.code === 4) {
      console.log("containers: the restarted container got a new pid namespace number: the heartbeat decides");
      await ageLock(t);
      r = await inContainer(t, "ctr-app", ["sync", "-v", "--lock-timeout", "300ms"]).done;
      expect(r.stderr).toMatch(/removed the stale lock of pid 1 \(sync, since .*\): no heartbeat for 2\ds/);
    } else {
      console.log("containers: the restarted container reused the pid namespace number: pid and start time decide");
      expect(r.stderr).toMatch(/removed the stale lock of pid 1 \(sync, since .*\): pid 1 is another process now/);
    }
    expect(r.code).toBe(0);
    await consistent(t, "v2");
  }, 60_000);

  it("a live holder in another container is never broken, even while it holds the lock longer than the staleness bound (its heartbeat runs)", async () => {
    // The pass holds the lock through a hook that outlasts the bound.
    const hookSec = Math.ceil(STALE_MS / 1000) + 5;
    const t = await setup({ command: ["sleep", String(hookSec)], timeout: `${hookSec + 30}s` });
    t.double.kvPut("secret", "app", { password: "v3" });
    const holder = inContainer(t, "ctr-holder", ["sync"]);
    const info = await waitForLock(t);
    expect(info).toMatchObject({ pid: 1, host: "ctr-holder" });
    // Waiters on the host and in another container (pid 1 there too), the long one outwaiting the holder.
    const short = await Promise.all([t.run(["sync", "--lock-timeout", "300ms"]), inContainer(t, "ctr-other", ["sync", "--lock-timeout", "300ms"]).done]);
    expect(short.map((r) => r.code)).toEqual([4, 4]);
    const long = inContainer(t, "ctr-waiter", ["sync", "-v", "--lock-timeout", `${hookSec + 60}s`]);
    const held = await holder.done;
    expect({ code: held.code, signal: held.signal, stderr: held.stderr }).toEqual({ code: 0, signal: null, stderr: "" });
    const waited = await long.done;
    expect(waited.code).toBe(0);
    // It waited for the live holder, and never judged its lock stale.
    expect(waited.stderr).toMatch(/waiting for the lock held by pid 1 on ctr-holder \(sync, since /);
    expect(waited.stderr).not.toMatch(/removed the stale lock/);
    await consistent(t, "v3");
  }, 120_000);
});
