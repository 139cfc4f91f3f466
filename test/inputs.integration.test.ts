/**
 * Inputs and promises (issue 10), end to end: the built CLI against the Vault double.
 */
import { readFileSync } from "node:fs";
import { chmod, lstat, mkdir, readFile, readdir, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Tree } from "./helpers.js";
import { baseLayout, trackedTrees } from "./helpers.js";

const tree = trackedTrees(afterEach);

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

describe("a state file that does not parse", () => {
  const POLICY = `
path "secret/data/*" { capabilities = ["read"] }
path "sys/internal/ui/mounts/*" { capabilities = ["read"] }
path "database/creds/app" { capabilities = ["read"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
`;
  async function leaseTree(): Promise<Tree> {
    const t = await tree({
      policy: POLICY,
      layout: baseLayout({
        sources: { db: { type: "lease", path: "database/creds/app" } },
        // Fails until the file "ok" exists, so the first sync leaves it pending.
        hooks: { restart: { command: "test -f ok && echo ran >> hook.log", shell: true } },
        outputs: [{ file: "db.env", format: "env", keys: { DB_USER: "db.username", DB_PASSWORD: "db.password" }, hooks: ["restart"] }],
      }),
    });
    t.double.mountDatabase("database");
    t.double.addDbRole("database", "app", { defaultTtl: 3600, maxTtl: 7200 });
    const r = await t.run(["sync"]);
    expect(r.code, r.stderr).toBe(1);
    return t;
  }
  const stateFile = (t: Tree) => path.join(t.agentDir, "state.json");
  const kept = async (t: Tree) => (await readdir(t.agentDir)).filter((n) => n.startsWith("state.json.corrupt-"));

  it("truncated: kept aside (0600), a warning with its path, and the lease and the pending hook survive", async () => {
    const t = await leaseTree();
    const full = await readFile(stateFile(t), "utf8");
    const leaseId = (JSON.parse(full) as { leases: { db: { leaseId: string } } }).leases.db.leaseId;
    expect(full).toContain('"restart"');
    const cut = full.slice(0, full.indexOf('"lastRun"') + 12);
    await writeFile(stateFile(t), cut);
    await writeFile(path.join(t.dir, "ok"), "");
    const r = await t.run(["sync"]);
    expect(r.code, r.stderr).toBe(0);
    const names = await kept(t);
    expect(names).toHaveLength(1);
    const keptPath = path.join(t.agentDir, names[0] as string);
    expect(r.stderr).toContain(`the state file is not valid JSON (truncated or damaged): ${stateFile(t)}; kept it as ${keptPath}; recovered 1 output, 1 lease, 1 pending hook`);
    expect(await readFile(keptPath, "utf8")).toBe(cut);
    expect((await stat(keptPath)).mode & 0o777).toBe(0o600);
    // The pending hook ran; the lease was kept (not fetched again, so not orphaned in Vault).
    expect(await readFile(path.join(t.dir, "hook.log"), "utf8")).toBe("ran\n");
    expect(t.double.countRequests({ path: "database/creds/app" })).toBe(1);
    const now = JSON.parse(await readFile(stateFile(t), "utf8")) as { leases: { db: { leaseId: string } }; pendingHooks: object };
    expect(now.leases.db.leaseId).toBe(leaseId);
    expect(now.pendingHooks).toEqual({});
  });

  it("damaged before the leases: a dry run leaves it in place, a sync keeps it aside and names the lost lease id", async () => {
    const t = await leaseTree();
    const full = await readFile(stateFile(t), "utf8");
    const leaseId = (JSON.parse(full) as { leases: { db: { leaseId: string } } }).leases.db.leaseId;
    const bad = full.replace('"leases": {', '"leases": {]');
    expect(bad).not.toBe(full);
    await writeFile(stateFile(t), bad);
    const dry = await t.run(["sync", "--dry-run"]);
    expect(dry.stderr).toContain(`${stateFile(t)} (left in place; the next sync keeps it aside)`);
    expect(dry.stderr).toContain(`leases that could not be recovered (revoke them: vault lease revoke <id>): ${leaseId}`);
    expect(await kept(t)).toEqual([]);
    expect(await readFile(stateFile(t), "utf8")).toBe(bad);
    const r = await t.run(["sync"]);
    expect(r.stderr).toMatch(/the state file is not valid JSON .*; kept it as .*state\.json\.corrupt-.*; recovered 1 output, 0 leases/);
    expect(r.stderr).toContain(leaseId);
    expect(await kept(t)).toHaveLength(1);
    // The state written by that run is whole again.
    expect(() => JSON.parse(readFileSync(stateFile(t), "utf8")) as unknown).not.toThrow();
  });
});

describe("a template's missing key", () => {
  it("names the file, line and column, for inline and file templates", async () => {
    const t = await tree({
      layout: baseLayout({
        outputs: [
          { file: "inline.conf", format: "template", inline: "user={{ app.user }}\n  pw={{ app.nope }}\n" },
          { file: "file.conf", format: "template", template: "tmpl/app.tmpl" },
        ],
      }),
    });
    await mkdir(path.join(t.dir, "tmpl"));
    await writeFile(path.join(t.dir, "tmpl/app.tmpl"), "a\nb\n   {{ app.gone | trim }}\n");
    t.double.kvPut("secret", "app", { user: "u" });
    const r = await t.run(["sync"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('inline.conf:2:6: key "nope" not found in source "app"');
    expect(r.stderr).toContain('file.conf: tmpl/app.tmpl:3:4: key "gone" not found in source "app"');
  });
});
