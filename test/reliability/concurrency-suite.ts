/**
 * Concurrency (docs/reliability.md §3), shared by concurrency.test.ts (a smaller size in
 * `npm test`) and concurrency.slow.test.ts (the CI size): many simultaneous runs of the real CLI
 * (child processes: the lock is between processes) against one tree. Every process exits with a
 * documented code, files and state end consistent, no lock is left, and a lock whose holder was
 * killed -9 is recovered.
 */import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { baseLayout, makeTree } from "../helpers.js";
import type { Tree } from "../helpers.js";
import { exists, scaled, spawnCli, tempFiles, waitFor } from "./support.js";

const POLICY = `
path "secret/data/*" { capabilities = ["read", "create", "update"] }
path "sys/internal/ui/mounts/*" { capabilities = ["read"] }
`;

let trees: Tree[] = [];
afterEach(async () => {
  await Promise.all(trees.map((x) => x.cleanup()));
  trees = [];
});

async function setup(vault?: Record<string, unknown>): Promise<Tree> {
  const t = await makeTree({ policy: POLICY, mode: "in-process" });
  trees.push(t);
  for (let i = 0; i < 8; i++) t.double.kvPut("secret", `c${i}`, { v: `value-${i}-0` });
  t.double.kvPut("secret", "gen", { password: "initial-password" });
  const sources: Record<string, unknown> = { gen: { type: "kv", mount: "secret", path: "gen", kvVersion: 2, generate: { key: "password", length: 32 } } };
  const outputs: unknown[] = [{ file: "gen/password", format: "raw", value: "gen.password" }, { file: "gen/app.env", format: "env", keys: { PASSWORD: "gen.password" } }];
  for (let i = 0; i < 8; i++) {
    sources[`c${i}`] = { type: "kv", mount: "secret", path: `c${i}`, kvVersion: 2 };
    outputs.push({ file: `c/${i}.txt`, format: "raw", value: `c${i}.v` });
  }
  await t.writeLayout(baseLayout({ sources, outputs, ...(vault ? { vault } : {}) }));
  return t;
}

async function checkConsistent(t: Tree) {
  const gen = t.double.kvCurrent("secret", "gen")?.data?.password as string;
  expect(await readFile(path.join(t.publicDir, "gen/password"), "utf8")).toBe(gen);
  expect(await readFile(path.join(t.publicDir, "gen/app.env"), "utf8")).toBe(`PASSWORD='${gen}'\n`);
  for (let i = 0; i < 8; i++) expect(await readFile(path.join(t.publicDir, `c/${i}.txt`), "utf8")).toBe(t.double.kvCurrent("secret", `c${i}`)?.data?.v);
  const state = JSON.parse(await readFile(path.join(t.agentDir, "state.json"), "utf8")) as { outputs: Record<string, unknown> };
  expect(Object.keys(state.outputs).sort()).toEqual(["c/0.txt", "c/1.txt", "c/2.txt", "c/3.txt", "c/4.txt", "c/5.txt", "c/6.txt", "c/7.txt", "gen/app.env", "gen/password"]);
  for (const f of ["lock", "lock.break", "commit-journal.json"]) await expect(stat(path.join(t.agentDir, f))).rejects.toThrow(/ENOENT/);
  expect(await tempFiles(t.dir)).toEqual([]);
}

/**
 * The concurrency tests at a size: `runs` simultaneous syncs (plus a rotate), `kills` holders
 * killed -9; `shortTimeout` adds the waiters with a short --lock-timeout.
 */
export function describeConcurrency(sizes: { runs: number; kills: number; shortTimeout: boolean; timeoutMs: number }): void {
describe("concurrency", () => {
  const n = sizes.runs;
  it(`${n} simultaneous syncs plus a rotate: documented exit codes, consistent files and state, no lock left`, async () => {
    const t = await setup();
    t.double.setLatency(5);
    expect((await t.run(["sync"])).code).toBe(0);
    for (let i = 0; i < 8; i++) t.double.kvPut("secret", `c${i}`, { v: `value-${i}-1` });
    const before = t.double.kvCurrent("secret", "gen")?.version;
    const runs = Array.from({ length: n }, () => spawnCli(t, ["sync"]));
    runs.splice(n / 2, 0, spawnCli(t, ["rotate", "gen/password"]));
    const results = await Promise.all(runs.map((r) => r.done));
    const codes = results.map((r) => r.code);
    console.log(`concurrency: ${runs.length} runs, exit codes ${JSON.stringify(codes.reduce<Record<string, number>>((a, c) => ({ ...a, [String(c)]: (a[String(c)] ?? 0) + 1 }), {}))}`);
    // The default --lock-timeout (30 s) is far longer than the queue: every run succeeds.
    // sync is silent on success; rotate reports what it rotated.
    for (const [i, r] of results.entries()) expect({ code: r.code, stderr: i === n / 2 ? "" : r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(results[n / 2]?.stderr).toMatch(/rotated secret\/gen key "password": version \d+ -> \d+/);
    expect(t.double.kvCurrent("secret", "gen")?.version).toBe((before ?? 0) + 1);
    await checkConsistent(t);
  }, sizes.timeoutMs);

  it.runIf(sizes.shortTimeout)("with a short --lock-timeout the waiters exit 4 with one line naming the holder; the holder finishes", async () => {
    // A held read must not hit the per-request timeout while the waiters start.
    const t = await setup({ timeout: "120s" });
    expect((await t.run(["sync"])).code).toBe(0);
    for (let i = 0; i < 8; i++) t.double.kvPut("secret", `c${i}`, { v: `value-${i}-2` });
    // The holder's reads wait on a gate opened once every waiter has given up, so it holds the
    // lock however slowly the machine starts eight processes (a fixed latency let it finish first).
    let open = (): void => undefined;
    const gate = new Promise<void>((resolve) => (open = resolve));
    t.double.addFault({ method: "GET", path: /^secret\/data\/c\d$/, holdUntil: gate, times: 8 });
    const holder = spawnCli(t, ["sync"]);
    const lockFile = path.join(t.agentDir, "lock");
    await waitFor("the holder to take the lock", () => exists(lockFile));
    await waitFor("the holder to wait on its reads", () => t.double.countRequests({ method: "GET", path: /^secret\/data\/c\d$/ }) > 0);
    const results = await Promise.all(Array.from({ length: 8 }, () => spawnCli(t, ["sync", "--lock-timeout", "200ms"]).done));
    open();
    for (const r of results) {
      expect(r.code).toBe(4);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(new RegExp(`another vault-render run holds .*lock: pid ${holder.child.pid} \\(sync, since .*\\); gave up after 200ms`));
    }
    expect((await holder.done).code).toBe(0);
    await checkConsistent(t);
  }, scaled(60_000));

  const kills = sizes.kills;
  it(`a lock whose holder was killed -9 is recovered by the next runs (${kills} times, 5 waiters each)`, async () => {
    const t = await setup();
    expect((await t.run(["sync"])).code).toBe(0);
    for (let k = 0; k < kills; k++) {
      t.double.setLatency(3000);
      for (let i = 0; i < 8; i++) t.double.kvPut("secret", `c${i}`, { v: `value-${i}-k${k}` });
      const holder = spawnCli(t, ["sync"]);
      const lockFile = path.join(t.agentDir, "lock");
      await waitFor("the holder to take the lock", () => exists(lockFile));
      const info = JSON.parse(await readFile(lockFile, "utf8")) as { pid: number };
      expect(info.pid).toBe(holder.child.pid);
      holder.child.kill("SIGKILL");
      expect((await holder.done).signal).toBe("SIGKILL");
      t.double.setLatency(0);
      const results = await Promise.all(Array.from({ length: 5 }, () => spawnCli(t, ["sync", "--lock-timeout", "10s"]).done));
      expect(results.map((r) => [r.code, r.stderr])).toEqual(Array.from({ length: 5 }, () => [0, ""]));
      await checkConsistent(t);
    }
  }, sizes.timeoutMs);
});
}
