/**
 * Torn reads through the writer module (docs/reliability.md §2), shared by torn-reads.test.ts
 * (300 rotations in `npm test`) and torn-reads.slow.test.ts (the CI size, 1,000): a separate
 * reader process reads every file in a tight loop while they are rotated in this process.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FILE_MODE, atomicWrite } from "../../src/core/fs/writer.js";
import { generation, startReader } from "./reader.js";

export const FILES = 10;
// Sizes from one byte to 256 KiB: a non-atomic write of the large ones is visible for a long time.
export const sizeOf = (i: number, gen: number) => [0, 1, 100, 4096, 4097, 65536, 262144, 12, 70000, 200000][(i + gen) % FILES] as number;

export function describeRotations(rotations: number, timeoutMs: number): void {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  describe("torn reads", () => {
  it(`a reader process never sees an empty, partial or mixed file during ${rotations} rotations (writer module)`, async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "vr-torn-"));
    dirs.push(dir);
    const files = Array.from({ length: FILES }, (_, i) => path.join(dir, `f${i}`));
    for (const [i, f] of files.entries()) await atomicWrite(f, Buffer.from(generation(0, sizeOf(i, 0))), FILE_MODE);
    const reader = startReader(dir, files);
    await reader.ready;
    const started = Date.now();
    for (let n = 1; n <= rotations; n++) {
      const i = n % FILES;
      await atomicWrite(files[i] as string, Buffer.from(generation(n, sizeOf(i, n))), FILE_MODE);
    }
    const ms = Date.now() - started;
    await writeFile(path.join(dir, ".stop-reader"), "");
    const report = await reader.report;
    console.log(`torn reads: ${rotations} rotations in ${ms} ms; reader: ${JSON.stringify(report)}`);
    expect(report.examples).toEqual([]);
    expect(report).toMatchObject({ bad: 0, missing: 0 });
    expect(report.reads).toBeGreaterThan(rotations);
  }, timeoutMs);

  });
}
