/**
 * Hooks that leave a background process holding their stdout/stderr: the built CLI against the
 * double. The hook is done when its own process exits (its output drained for a bounded time);
 * its timeout ends the wait whatever its descendants do. sync finishes and releases the lock.
 */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Tree } from "./helpers.js";
import { baseLayout, makeTree } from "./helpers.js";

let trees: Tree[] = [];
/** Background processes the tests' hooks started (their pids, from bg.pid). */
const leftovers: string[] = [];
afterEach(async () => {
  for (const f of leftovers.splice(0)) {
    const pid = Number((await readFile(f, "utf8").catch(() => "")).trim());
    if (pid > 1) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
  await Promise.all(trees.map((t) => t.cleanup()));
  trees = [];
});

async function tree(hook: Record<string, unknown>): Promise<Tree> {
  const t = await makeTree();
  trees.push(t);
  leftovers.push(path.join(t.dir, "bg.pid"));
  t.double.kvPut("secret", "app", { password: "p" });
  await t.writeLayout(baseLayout({ hooks: { h: hook }, outputs: [{ file: "app.env", format: "env", keys: { DB_PASSWORD: "app.password" }, hooks: ["h"] }] }));
  return t;
}

async function pendingHooks(t: Tree): Promise<string[]> {
  const state = JSON.parse(await readFile(path.join(t.agentDir, "state.json"), "utf8")) as { pendingHooks: Record<string, unknown> };
  return Object.keys(state.pendingHooks);
}

/** Is the background process the hook started still running (the hook's business, not ours)? */
async function bgAlive(t: Tree): Promise<boolean> {
  const pid = Number((await readFile(path.join(t.dir, "bg.pid"), "utf8")).trim());
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("hooks whose descendants hold the pipes", () => {
  it("a hook that exits leaving `sleep 1000 &` on its stdout is done: sync exits 0, the hook is not pending, no lock left", async () => {
    const t = await tree({ command: "sleep 1000 & echo $! > bg.pid; echo started", shell: true });
    const r = await t.run(["sync", "-v"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/hook h: started/);
    expect(r.stderr).toMatch(/hook h ran for app\.env/);
    expect(await pendingHooks(t)).toEqual([]);
    await expect(stat(path.join(t.agentDir, "lock"))).rejects.toThrow(/ENOENT/);
    expect(await bgAlive(t)).toBe(true);
  });

  it("a hook that exits leaving a setsid-detached child on its stdout is done: sync exits 0", async () => {
    const t = await tree({ command: "setsid sleep 1000 & echo $! > bg.pid; echo started", shell: true });
    const r = await t.run(["sync", "-v"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/hook h ran for app\.env/);
    expect(await pendingHooks(t)).toEqual([]);
    await expect(stat(path.join(t.agentDir, "lock"))).rejects.toThrow(/ENOENT/);
  });

  it("a hook that runs past its timeout while a setsid-detached child holds its pipes is stopped and counted as timed out: exit 1, pending, no lock left", async () => {
    const t = await tree({ command: "setsid sleep 1000 & echo $! > bg.pid; sleep 1000", shell: true, timeout: "300ms" });
    const r = await t.run(["sync"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/hook h timed out after 300ms and was stopped \(SIGTERM\); it stays pending/);
    expect(await pendingHooks(t)).toEqual(["h"]);
    await expect(stat(path.join(t.agentDir, "lock"))).rejects.toThrow(/ENOENT/);
    // The detached child escaped the process group (setsid): still running, no longer waited for.
    expect(await bgAlive(t)).toBe(true);
  });

  it("a timed-out hook's whole process group is killed, including a background child holding the pipe", async () => {
    const t = await tree({ command: "sleep 1000 & echo $! > bg.pid; sleep 1000", shell: true, timeout: "300ms" });
    const r = await t.run(["sync"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/hook h timed out after 300ms/);
    expect(await pendingHooks(t)).toEqual(["h"]);
    // SIGKILL to the group when the wait ends: the group's last member may take a moment to be reaped.
    for (let i = 0; i < 200 && (await bgAlive(t)); i++) await new Promise((res) => setTimeout(res, 25));
    expect(await bgAlive(t)).toBe(false);
  });
});
