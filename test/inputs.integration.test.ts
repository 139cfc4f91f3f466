/**
 * Inputs and promises (issue 10), end to end: the built CLI against the Vault double.
 */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Tree } from "./helpers.js";
import { baseLayout, makeTree } from "./helpers.js";

let trees: Tree[] = [];
afterEach(async () => {
  await Promise.all(trees.map((t) => t.cleanup()));
  trees = [];
});
async function tree(opts: Parameters<typeof makeTree>[0] = {}): Promise<Tree> {
  const t = await makeTree(opts);
  trees.push(t);
  return t;
}

describe("an output that renders no keys", () => {
  const outputs = (allowEmpty?: boolean) => [
    { file: "all.env", format: "env", from: ["app"], ...(allowEmpty === undefined ? {} : { allowEmpty }) },
    { file: "all.json", format: "json", from: ["app"], ...(allowEmpty === undefined ? {} : { allowEmpty }) },
  ];

  it("fails (old file kept, exit 1, a clear message) when the secret is emptied in Vault", async () => {
    const t = await tree({ layout: baseLayout({ outputs: outputs() }) });
    t.double.kvPut("secret", "app", { password: "hunter22" });
    expect((await t.run(["sync"])).code).toBe(0);
    const env = path.join(t.publicDir, "all.env");
    const json = path.join(t.publicDir, "all.json");
    const before = [await readFile(env, "utf8"), await readFile(json, "utf8"), (await stat(env)).mtimeMs];
    expect(before[0]).toBe("password='hunter22'\n");
    t.double.kvPut("secret", "app", {});
    const r = await t.run(["sync"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/all\.env: renders no keys/);
    expect(r.stderr).toMatch(/all\.json: renders no keys/);
    expect(r.stderr).toContain('"allowEmpty": true');
    expect([await readFile(env, "utf8"), await readFile(json, "utf8"), (await stat(env)).mtimeMs]).toEqual(before);
  });

  it('is written empty when the layout says "allowEmpty": true', async () => {
    const t = await tree({ layout: baseLayout({ outputs: outputs(true) }) });
    t.double.kvPut("secret", "app", {});
    const r = await t.run(["sync"]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(await readFile(path.join(t.publicDir, "all.env"), "utf8")).toBe("");
    expect(await readFile(path.join(t.publicDir, "all.json"), "utf8")).toBe("{}\n");
  });
});
