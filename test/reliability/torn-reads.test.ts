/**
 * Torn reads (docs/reliability.md §2): a separate reader process reads every managed file in a
 * tight loop while files are rotated (in-process through the writer module the CLI uses, and a
 * few times through the CLI, in-process). It must never see an empty, partial or mixed file.
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { baseLayout, makeTree } from "../helpers.js";
import type { Tree } from "../helpers.js";
import { generation, startReader } from "./reader.js";
import { budget, scaled, size } from "./support.js";
import { FILES, describeRotations, sizeOf } from "./torn-rotations.js";


let t: Tree;
beforeAll(async () => {
  t = await makeTree({ mode: "in-process" });
});
afterAll(async () => {
  await t?.cleanup();
});

// 300 rotations here; the CI size (1,000; STRESS=1: 10,000) in torn-reads.slow.test.ts.
describeRotations(300, scaled(60_000));

describe("torn reads", () => {
  it("control: the same reader does catch a non-atomic writer (truncate and write in place)", async () => {
    const dir = path.join(t.dir, "control");
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, "f");
    await writeFile(file, generation(0, 262144));
    const reader = startReader(dir, [file]);
    await reader.ready;
    for (let n = 1; n <= 200; n++) await writeFile(file, generation(n, 262144 + (n % 7) * 65536));
    await writeFile(path.join(dir, ".stop-reader"), "");
    const report = await reader.report;
    expect(report.bad).toBeGreaterThan(0);
  }, scaled(60_000));

  it(`the CLI (in-process): ${size(10, 50)} syncs rotating 10 files under a reader`, async () => {
    const n = size(10, 50);
    const outputs = Array.from({ length: FILES }, (_, i) => ({ file: `t/f${i}`, format: "raw", value: `s.k${i}` }));
    await t.writeLayout(baseLayout({ sources: { s: { type: "kv", mount: "secret", path: "torn", kvVersion: 2 } }, outputs }));
    const put = (gen: number) => t.double.kvPut("secret", "torn", Object.fromEntries(Array.from({ length: FILES }, (_, i) => [`k${i}`, generation(gen, sizeOf(i, gen))])));
    put(0);
    expect((await t.run(["sync"])).code).toBe(0);
    const files = outputs.map((o) => path.join(t.publicDir, o.file));
    const reader = startReader(path.join(t.publicDir, "t"), files);
    await reader.ready;
    for (let g = 1; g <= n; g++) {
      put(g);
      const r = await t.run(["sync"]);
      expect(r).toMatchObject({ code: 0, stderr: "" });
    }
    await writeFile(path.join(t.publicDir, "t", ".stop-reader"), "");
    const report = await reader.report;
    console.log(`torn reads (CLI): ${n} syncs x ${FILES} files; reader: ${JSON.stringify(report)}`);
    expect(report).toMatchObject({ bad: 0, missing: 0, examples: [] });
  }, budget(60_000, 300_000));
});
