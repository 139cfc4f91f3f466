/**
 * `check` and `status` end to end: every finding appears in the table and in JSON with the right
 * exit code, and check never touches a file.
 */
import { chmod, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Tree } from "./helpers.js";
import { baseLayout, makeTree, snapshot } from "./helpers.js";

interface Finding {
  check: string;
  severity: "error" | "warning" | "ok";
  subject: string;
  message: string;
  keys?: { added: string[]; removed: string[]; changed: string[] };
}
interface Report {
  ok: boolean;
  exit: number;
  vaultVerified: boolean;
  findings: Finding[];
  counts: { error: number; warning: number; ok: number };
}

let trees: Tree[] = [];
afterEach(async () => {
  await Promise.all(trees.map((t) => t.cleanup()));
  trees = [];
});

const SECRET = "CANARY-check-9f3b1e-secret";

async function synced(): Promise<Tree> {
  const t = await makeTree();
  trees.push(t);
  t.double.kvPut("secret", "app", { password: SECRET, user: "app" });
  await t.writeLayout(
    baseLayout({
      outputs: [
        { file: "app.env", format: "env", keys: { DB_PASSWORD: "app.password", DB_USER: "app.user" } },
        { file: "conf/app.json", format: "json", keys: { password: "app.password", user: "app.user" } },
        { file: "password", format: "raw", value: "app.password" },
      ],
    }),
  );
  const r = await t.run(["sync"]);
  expect(r.code).toBe(0);
  return t;
}

async function check(t: Tree, args: string[] = [], env: Record<string, string> = {}): Promise<{ code: number | null; table: string; report: Report; stderr: string }> {
  const table = await t.run(["check", ...args], { env });
  const json = await t.run(["check", "--json", ...args], { env });
  expect(json.code).toBe(table.code);
  for (const out of [table.stdout, table.stderr, json.stdout, json.stderr]) expect(out).not.toContain(SECRET);
  return { code: table.code, table: table.stdout, report: JSON.parse(json.stdout) as Report, stderr: table.stderr };
}

const find = (r: Report, check: string, subject?: string) => r.findings.filter((f) => f.check === check && (subject === undefined || f.subject === subject));

describe("check", () => {
  it("all good: exit 0, and it leaves every file's bytes, mode and mtime untouched", async () => {
    const t = await synced();
    const pub = await snapshot(t.publicDir);
    const agent = await snapshot(t.agentDir);
    const r = await check(t);
    expect(r.code).toBe(0);
    expect(r.report).toMatchObject({ ok: true, exit: 0, vaultVerified: true });
    expect(r.table).toMatch(/check: all good: 0 errors/);
    expect(find(r.report, "vault.sealed")[0]?.severity).toBe("ok");
    expect(find(r.report, "vault.node")[0]?.message).toMatch(/active node/);
    expect(find(r.report, "content").map((f) => f.subject).sort()).toEqual(["app.env", "conf/app.json", "password"]);
    expect(find(r.report, "host-exposure")[0]?.severity).toBe("ok");
    expect(await snapshot(t.publicDir)).toEqual(pub);
    expect(await snapshot(t.agentDir)).toEqual(agent);
    // and it never wrote: no write request reached Vault
    expect(t.double.requests.filter((q) => q.method !== "GET" && !q.path.endsWith("/login")).length).toBe(0);
  });

  it("reports drift per key after a hand edit, never the values", async () => {
    const t = await synced();
    const envFile = path.join(t.publicDir, "app.env");
    await writeFile(envFile, (await readFile(envFile, "utf8")).replace(`DB_PASSWORD='${SECRET}'`, "DB_PASSWORD='hand-edited'") + "EXTRA='x'\n");
    const jsonFile = path.join(t.publicDir, "conf/app.json");
    await writeFile(jsonFile, JSON.stringify({ password: SECRET, user: "root" }));
    const before = await snapshot(t.publicDir);
    const r = await check(t);
    expect(r.code).toBe(1);
    expect(find(r.report, "drift", "app.env")[0]).toMatchObject({ severity: "error", keys: { added: [], removed: ["EXTRA"], changed: ["DB_PASSWORD"] } });
    expect(find(r.report, "drift", "conf/app.json")[0]?.keys).toEqual({ added: [], removed: [], changed: ["user"] });
    expect(r.table).toMatch(/FAIL +drift +app\.env +differs from what sync would render: -EXTRA ~DB_PASSWORD/);
    expect(r.table).not.toContain("hand-edited");
    expect(await snapshot(t.publicDir)).toEqual(before);
  });

  it("reports a chmod'ed file, an orphan, a stale temp file and the last sync's age", async () => {
    const t = await synced();
    await chmod(path.join(t.publicDir, "password"), 0o600);
    await writeFile(path.join(t.publicDir, "stray.txt"), "x");
    await writeFile(path.join(t.publicDir, ".vault-render.tmp-1-abc"), "x");
    const r = await check(t, ["--offline", "--max-age", "1h"]);
    expect(r.code).toBe(1);
    expect(find(r.report, "mode", "password")[0]?.message).toBe("mode is 0600, expected 0644");
    expect(find(r.report, "orphan", "stray.txt")[0]?.severity).toBe("warning");
    expect(find(r.report, "temp-file")[0]?.subject).toBe(".vault-render.tmp-1-abc");
    expect(find(r.report, "max-age")[0]?.severity).toBe("ok");
    expect(r.report.vaultVerified).toBe(false);
    expect(r.table).toMatch(/FAIL +mode +password +mode is 0600, expected 0644/);
    const old = await check(t, ["--offline", "--max-age", "1h"], { VAULT_RENDER_TEST_NOW_OFFSET: "7200" });
    expect(find(old.report, "max-age")[0]?.severity).toBe("error");
  });

  it("a missing key names output, path and key", async () => {
    const t = await synced();
    t.double.kvPut("secret", "app", { password: SECRET });
    const r = await check(t);
    expect(r.code).toBe(1);
    expect(find(r.report, "missing-key", "app.env")[0]?.message).toBe('app.env: key "user" not found in source "app" (secret/data/app) (hint: present keys: password)');
  });

  it("Vault sealed: exit 3, and the offline findings are still reported", async () => {
    const t = await synced();
    await chmod(path.join(t.publicDir, "password"), 0o600);
    t.double.seal();
    const r = await check(t);
    expect(r.code).toBe(3);
    expect(find(r.report, "vault.sealed")[0]).toMatchObject({ severity: "error", message: "Vault is sealed" });
    expect(find(r.report, "mode", "password")[0]?.severity).toBe("error");
    expect(r.table).toMatch(/could not verify against Vault/);
    const off = await check(t, ["--offline"]);
    expect(off.code).toBe(1);
  });

  it("Vault unreachable or auth failing: exit 3", async () => {
    const t = await synced();
    const r = await check(t, [], { VAULT_ADDR: "http://127.0.0.1:9" });
    expect(r.code).toBe(3);
    expect(find(r.report, "vault.reachable")[0]?.message).toMatch(/ECONNREFUSED/);
    await writeFile(path.join(t.agentDir, "token"), "hvs.bogus\n");
    await writeFile(path.join(t.agentDir, "approle/secret_id"), "wrong\n");
    const r2 = await check(t);
    expect(r2.code).toBe(3);
    expect(find(r2.report, "auth")[0]?.message).toMatch(/AppRole login failed/);
  });

  it("warns about host exposure when every ancestor is traversable, not when the root is 0700", async () => {
    const t = await synced();
    expect(find((await check(t, ["--offline"])).report, "host-exposure")[0]?.severity).toBe("ok");
    await chmod(t.dir, 0o755);
    const r = await check(t, ["--offline"]);
    const f = find(r.report, "host-exposure")[0];
    expect(f?.severity).toBe("warning");
    expect(f?.message).toContain(`chmod 700 ${t.dir}`);
    expect(r.code).toBe(0);
  });

  it("reports an invalid layout with exit 2 and the JSON path", async () => {
    const t = await synced();
    await t.writeLayout({ version: 1, outputs: "nope" });
    const r = await t.run(["check"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/\$\.outputs: must be a list, not a string/);
  });
});

describe("check with certificates and the generated policy", () => {
  it("a certificate within --min-validity is an error; a healthy one is ok", async () => {
    const t = await makeTree({ policy: `path "pki_int/issue/web" { capabilities = ["update"] }` });
    trees.push(t);
    t.double.mountPki("pki_int");
    t.double.addPkiRole("pki_int", "web", { allowedDomains: ["home.arpa"], allowSubdomains: true, maxTtl: 30 * 86400 });
    await t.writeLayout(baseLayout({ sources: {}, outputs: [{ format: "pki", dir: "certs/web", mount: "pki_int", role: "web", commonName: "web.home.arpa", ttl: "72h" }] }));
    expect((await t.run(["sync"])).code).toBe(0);
    const ok = await check(t, ["--min-validity", "2d"]);
    expect(ok.code).toBe(0);
    expect(find(ok.report, "certificate", "certs/web")[0]?.message).toMatch(/^valid for 3\.0 more days \(serial [0-9A-F]+\)$/);
    // The default --min-validity is 7 days: a 3-day certificate is reported.
    const low = await check(t);
    expect(low.code).toBe(1);
    expect(find(low.report, "certificate", "certs/web")[0]).toMatchObject({ severity: "error" });
    expect(find(low.report, "certificate", "certs/web")[0]?.message).toMatch(/expires in 3\.0 days .* below --min-validity/);
    expect(low.table).toMatch(/FAIL +certificate +certs\/web +expires in 3\.0 days/);
  });

  it("passes with the policy `vault-render policy` generates, and reports the source it lacks without a rule", async () => {
    const t = await synced();
    const hcl = (await t.run(["policy"])).stdout;
    t.double.addPolicy("app", hcl);
    expect((await t.run(["sync"])).code).toBe(0);
    expect((await check(t)).code).toBe(0);
    t.double.addPolicy("app", hcl.replace(/path "secret\/data\/app" \{[^}]*\}/, ""));
    const r = await check(t);
    expect(r.code).toBe(1);
    expect(find(r.report, "source", "source app")[0]?.message).toMatch(/read secret\/data\/app: permission denied \(the policy needs "read" on "secret\/data\/app"\)/);
  });
});

describe("status", () => {
  it("shows one row per output from state, offline", async () => {
    const t = await synced();
    t.double.seal();
    const r = await t.run(["status"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/OUTPUT +FORMAT +SOURCES +WRITTEN/);
    expect(r.stdout).toMatch(/app\.env +env +app@v1 +\d{4}-\d\d-\d\d/);
    const j = await t.run(["status", "--json"]);
    const report = JSON.parse(j.stdout) as { outputs: Array<{ output: string; sources: Record<string, number> }> };
    expect(report.outputs.map((o) => o.output)).toEqual(["app.env", "conf/app.json", "password"]);
    expect(report.outputs[0]?.sources).toEqual({ app: 1 });
    expect(t.double.countRequests()).toBeGreaterThan(0);
    const before = t.double.requests.length;
    await t.run(["status"]);
    expect(t.double.requests.length).toBe(before);
  });
});
