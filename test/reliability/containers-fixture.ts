/**
 * Runs of the real CLI as pid 1 of their own "container" (pid and UTS namespaces, `unshare`),
 * shared by containers.test.ts and containers.slow.test.ts. Needs root and unshare.
 */
import { execFileSync, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { readFile, stat, utimes } from "node:fs/promises";
import path from "node:path";
import { afterEach, expect } from "vitest";
import { STALE_MS } from "../../src/core/fs/lock.js";
import { BIN, baseLayout, makeTree } from "../helpers.js";
import type { Tree } from "../helpers.js";
import { childEnv, exists, tempFiles, waitFor } from "./support.js";

export const canUnshare = (() => {
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
/** Kill what a test left running and remove its trees, after each test of the calling file. */
export function cleanAfterEach(): void {
  afterEach(async () => {
    for (const c of started.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await Promise.all(trees.map((x) => x.cleanup()));
    trees = [];
  });
}

export interface Run {
  child: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

/** The CLI as the first process (pid 1) of a new "container": own pid namespace and host name. */
export function inContainer(t: Tree, host: string, args: string[]): Run {
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
export function killContainer(r: Run): void {
  const pid = r.child.pid as number;
  const inner = Number(execFileSync("cat", [`/proc/${pid}/task/${pid}/children`]).toString().trim().split(/\s+/)[0]);
  process.kill(inner, "SIGKILL");
}

export async function setup(hook?: Record<string, unknown>): Promise<Tree> {
  const t = await makeTree({ mode: "in-process" });
  trees.push(t);
  t.double.kvPut("secret", "app", { password: "v0" });
  await t.writeLayout(baseLayout({ ...(hook ? { hooks: { h: hook } } : {}), outputs: [{ file: "app.env", format: "env", keys: { DB_PASSWORD: "app.password" }, ...(hook ? { hooks: ["h"] } : {}) }] }));
  expect((await t.run(["sync", "--no-hooks"])).code).toBe(0);
  return t;
}

export async function waitForLock(t: Tree): Promise<{ pid: number; host: string; pidns?: string }> {
  const lockFile = path.join(t.agentDir, "lock");
  await waitFor("the container's run to take the lock", () => exists(lockFile));
  return JSON.parse(await readFile(lockFile, "utf8")) as { pid: number; host: string; pidns?: string };
}

/** Make the lock's heartbeat look older than the staleness bound (time passing, without waiting). */
export async function ageLock(t: Tree): Promise<void> {
  const past = (Date.now() - STALE_MS - 5000) / 1000;
  await utimes(path.join(t.agentDir, "lock"), past, past);
}

export async function consistent(t: Tree, value: string): Promise<void> {
  expect(await readFile(path.join(t.publicDir, "app.env"), "utf8")).toBe(`DB_PASSWORD='${value}'\n`);
  for (const f of ["lock", "lock.break"]) await expect(stat(path.join(t.agentDir, f))).rejects.toThrow(/ENOENT/);
  expect(await tempFiles(t.dir)).toEqual([]);
}

