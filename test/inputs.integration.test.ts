/**
 * Inputs and promises (issue 10), end to end: the built CLI against the Vault double.
 */
import { chmod, lstat, readFile, readdir, stat } from "node:fs/promises";
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

/** Names, bytes, modes and mtimes of a tree, the directory itself included. */
async function exactSnapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string) => {
    const abs = path.join(dir, rel);
    let st;
    try {
      st = await lstat(abs);
    } catch {
      out[rel || "."] = "absent";
      return;
    }
    const head = `mode=${(st.mode & 0o7777).toString(8)} mtime=${st.mtimeMs} ino=${st.ino}`;
    if (st.isDirectory()) {
      out[(rel || ".") + "/"] = head;
      for (const n of (await readdir(abs)).sort()) await walk(rel ? `${rel}/${n}` : n);
    } else {
      out[rel] = `${head} bytes=${st.isFile() ? (await readFile(abs)).toString("base64") : "-"}`;
    }
  };
  await walk("");
  return out;
}

async function snapBoth(t: Tree) {
  return { agent: await exactSnapshot(t.agentDir), pub: await exactSnapshot(t.publicDir) };
}

describe("sync --dry-run and check write nothing", () => {
  it("on a first run (no token, no state.key, no public/ yet)", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "hunter22" });
    const before = await snapBoth(t);
    expect(Object.keys(before.agent)).not.toContain("token");
    expect(Object.keys(before.agent)).not.toContain("state.key");
    const dry = await t.run(["sync", "--dry-run"]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/create\s+app\.env/);
    expect(await snapBoth(t)).toEqual(before);
    await t.run(["check"]);
    expect(await snapBoth(t)).toEqual(before);
  });

  it("when the token needs renewal or a new login, and when agent-only/ is not 0700", async () => {
    const t = await tree({ tokenTtl: 3600, tokenMaxTtl: 4000 });
    t.double.kvPut("secret", "app", { password: "hunter22" });
    expect((await t.run(["sync"])).code).toBe(0);
    t.double.kvPut("secret", "app", { password: "hunter23" });
    // Past half the TTL and so near the max TTL that renewing cannot help: a sync would log in again.
    t.double.advanceTime(3800);
    const env = { VAULT_RENDER_TEST_NOW_OFFSET: "3800" };
    await chmod(t.agentDir, 0o750);
    const before = await snapBoth(t);
    const dry = await t.run(["sync", "--dry-run"], { env });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/update\s+app\.env/);
    expect(await snapBoth(t)).toEqual(before);
    await t.run(["check"], { env });
    expect(await snapBoth(t)).toEqual(before);
    // The real sync does log in again and write the token.
    expect((await t.run(["sync"], { env })).code).toBe(0);
    expect((await snapBoth(t)).agent.token).not.toEqual(before.agent.token);
  });
});

describe("names inherited from Object.prototype", () => {
  it("constructor, toString, valueOf and __proto__ as source, hook, output file, env/json keys and Vault keys work end to end", async () => {
    const t = await tree({
      layout: baseLayout({
        sources: { constructor: { type: "kv", mount: "secret", path: "proto" } },
        hooks: { toString: { command: ["sh", "-c", "echo ran >> hook.log"] } },
        outputs: [
          { file: "constructor", format: "env", from: ["constructor"], hooks: ["toString"] },
          { file: "keys.env", format: "env", keys: { constructor: "constructor.constructor", toString: "constructor.__proto__", valueOf: "constructor.valueOf" } },
          { file: "proto.json", format: "json", from: ["constructor"] },
          { file: "t.conf", format: "template", inline: "{{ constructor.__proto__ }}/{{ constructor.constructor }}\n" },
        ],
      }),
    });
    // A KV secret whose keys are prototype names (JSON.parse makes "__proto__" an own key).
    const data = JSON.parse('{"constructor":"c-value","__proto__":"p-value","valueOf":"v-value"}') as Record<string, unknown>;
    t.double.kvPut("secret", "proto", data);
    const r1 = await t.run(["sync"]);
    expect(r1, r1.stderr).toMatchObject({ code: 0, stderr: "" });
    const read = (f: string) => readFile(path.join(t.publicDir, f), "utf8");
    expect(await read("constructor")).toBe("__proto__='p-value'\nconstructor='c-value'\nvalueOf='v-value'\n");
    expect(await read("keys.env")).toBe("constructor='c-value'\ntoString='p-value'\nvalueOf='v-value'\n");
    expect(await read("proto.json")).toBe('{\n  "__proto__": "p-value",\n  "constructor": "c-value",\n  "valueOf": "v-value"\n}\n');
    expect(await read("t.conf")).toBe("p-value/c-value\n");
    expect(await readFile(path.join(t.dir, "hook.log"), "utf8")).toBe("ran\n");

    // Nothing changed: nothing written, the hook does not run again.
    const before = await exactSnapshot(t.publicDir);
    const r2 = await t.run(["sync"]);
    expect(r2, r2.stderr).toMatchObject({ code: 0, stderr: "" });
    expect(await exactSnapshot(t.publicDir)).toEqual(before);
    expect(await readFile(path.join(t.dir, "hook.log"), "utf8")).toBe("ran\n");
    const check = await t.run(["check"]);
    expect(check.code, check.stdout + check.stderr).toBe(0);

    // The recorded key hashes survive a reload, "__proto__" included: a changed value is "~", not "+".
    t.double.kvPut("secret", "proto", JSON.parse('{"constructor":"c-value","__proto__":"p-value-2","valueOf":"v-value"}') as Record<string, unknown>);
    const dry = await t.run(["sync", "--dry-run"]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/update\s+constructor\s+keys: ~__proto__ /);
    expect(dry.stdout).toMatch(/update\s+keys\.env\s+keys: ~toString /);
  });
});
