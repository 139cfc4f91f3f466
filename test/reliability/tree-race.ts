/**
 * The tree race (docs/reliability.md §7), shared by tree.test.ts (a short race in `npm test`) and
 * tree-race.slow.test.ts (the CI size): a real separate process swaps public/sub for a symlink to
 * a directory outside and back while syncs run.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { lstat, mkdtemp, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { baseLayout, makeTree } from "../helpers.js";
import type { Tree } from "../helpers.js";
import { STACK_RE, exists, listFiles, tempFiles, waitFor } from "./support.js";

const POLICY = `
path "secret/data/*" { capabilities = ["read"] }
path "sys/internal/ui/mounts/*" { capabilities = ["read"] }
path "pki_int/issue/web" { capabilities = ["update"] }
`;

function expectCleanLines(stderr: string) {
  expect(stderr).not.toMatch(STACK_RE);
  for (const l of stderr.trim().split("\n").filter(Boolean)) expect(l).toMatch(/^vault-render: /);
}

export function describeRace(trials: number, timeoutMs: number): void {
describe("a directory swapped for a symlink while sync runs", () => {
  let trees: Tree[] = [];
  const dirs: string[] = [];
  const racers: ChildProcess[] = [];
  afterEach(async () => {
    for (const r of racers.splice(0)) r.kill("SIGKILL");
    await Promise.all(trees.map((x) => x.cleanup()));
    trees = [];
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  // Swaps public/sub for a symlink to a directory outside and back, about a thousand times a
  // second, sleeping (not spinning) in between so the syncs it races still get the CPU.
  const RACER = `
const fs = require("fs");
const [dir, outside, countFile] = process.argv.slice(2);
const sub = dir + "/sub", aside = dir + "/sub.real";
const cell = new Int32Array(new SharedArrayBuffer(4));
const nap = (ms) => Atomics.wait(cell, 0, 0, ms);
let swaps = 0;
function burst() {
  for (let k = 0; k < 50; k++) {
    try {
      fs.renameSync(sub, aside);
      fs.symlinkSync(outside, sub);
      swaps++;
      nap(0.4);
      fs.unlinkSync(sub);
      fs.renameSync(aside, sub);
    } catch {
      // sync recreated sub/ meanwhile, or a step failed: put things back and go on
      try { if (fs.lstatSync(sub).isSymbolicLink()) fs.unlinkSync(sub); } catch {}
      try { fs.renameSync(aside, sub); } catch { try { fs.rmSync(aside, { recursive: true, force: true }); } catch {} }
    }
    nap(0.4);
  }
  fs.writeFileSync(countFile, String(swaps));
  setImmediate(burst);
}
burst();`;

  it(
    "no file ever appears outside public/; the outputs affected fail cleanly; the run after the race converges",
    async () => {
      const t = await makeTree({ policy: POLICY, mode: "in-process" });
      trees.push(t);
      const N = 20;
      const outputs = Array.from({ length: N }, (_, i) => ({ file: `sub/f${i}.txt`, format: "raw", value: "app.v" }));
      t.double.kvPut("secret", "app", { v: "gen-0" });
      await t.writeLayout(baseLayout({ outputs }));
      expect((await t.run(["sync"])).code).toBe(0);
      const outside = await mkdtemp(path.join(tmpdir(), "vr-outside-"));
      dirs.push(outside);
      await writeFile(path.join(t.dir, "racer.cjs"), RACER);
      const countFile = path.join(t.dir, "swaps");
      const racer = spawn(process.execPath, [path.join(t.dir, "racer.cjs"), t.publicDir, outside, countFile], { stdio: ["ignore", "ignore", "inherit"] });
      racers.push(racer);
      const exited = new Promise((r) => racer.on("close", r));
      // The syncs start once the racer is swapping (its first burst written), not after a fixed wait.
      await waitFor("the racer's first burst of swaps", () => exists(countFile));
      const stats = { ok: 0, failedCleanly: 0, refusedSymlink: 0, written: 0 };
      try {
        for (let i = 1; i <= trials; i++) {
          t.double.kvPut("secret", "app", { v: `gen-${i}` });
          const r = await t.run(["sync"]);
          expect([0, 1], `trial ${i}: ${r.stderr}`).toContain(r.code);
          expectCleanLines(r.stderr);
          if (r.code === 0) stats.ok++;
          else stats.failedCleanly++;
          if (/refusing to write through the symlinked directory/.test(r.stderr)) stats.refusedSymlink++;
          stats.written += await countGen(t.publicDir, `gen-${i}`);
          const escaped = await listFiles(outside);
          if (escaped.length) throw new Error(`trial ${i}: files appeared outside public/: ${escaped.join(", ")}`);
        }
      } finally {
        racer.kill("SIGKILL");
        await exited;
      }
      const swaps = await readFile(countFile, "utf8").catch(() => "?");
      console.log(`tree race: ${trials} syncs against ${swaps} directory swaps: ${JSON.stringify(stats)}`);
      expect(Number(swaps)).toBeGreaterThan(trials);
      expect(stats.failedCleanly).toBeGreaterThan(0);
      // The race did not simply stop every write: outputs were written inside public/ meanwhile.
      expect(stats.written).toBeGreaterThan(0);
      // The racer is stopped with public/sub either real or put back by hand here.
      const sub = path.join(t.publicDir, "sub");
      if ((await lstat(sub).catch(() => null))?.isSymbolicLink()) await rm(sub);
      if (!(await lstat(sub).catch(() => null))) await rename(path.join(t.publicDir, "sub.real"), sub);
      await rm(path.join(t.publicDir, "sub.real"), { recursive: true, force: true });
      const last = await t.run(["sync"]);
      expect(last.code).toBe(0);
      for (let i = 0; i < N; i++) expect(await readFile(path.join(sub, `f${i}.txt`), "utf8")).toBe(`gen-${trials}`);
      expect(await tempFiles(t.dir)).toEqual([]);
      expect(await listFiles(outside)).toEqual([]);
    },
    timeoutMs,
  );
});
}

/** How many files of public/sub (or its aside name, whichever is a real directory now) hold `content`. */
async function countGen(publicDir: string, content: string): Promise<number> {
  let n = 0;
  for (const d of ["sub", "sub.real"]) {
    const abs = path.join(publicDir, d);
    try {
      if (!(await lstat(abs)).isDirectory()) continue;
      for (const f of await readdir(abs)) if ((await readFile(path.join(abs, f), "utf8").catch(() => "")) === content) n++;
    } catch {
      // renamed meanwhile
    }
  }
  return n;
}

