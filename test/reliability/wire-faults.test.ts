/**
 * Faults on the wire that a blind retry would turn into damage (docs/reliability.md §5):
 * a connection dropped *after* Vault performed the request must not lead to a second login (a
 * burned secret_id use), a second certificate, second credentials or a second secret_id; a
 * standby's 307/308 is "Vault unavailable" (exit 3, nothing changed) for every request kind.
 * The CLI (in-process: argv → main) against the double, which counts what it did.
 */
import { readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { PKI_LEASE_RULES, baseLayout, makeTree, snapshot } from "../helpers.js";
import type { Tree } from "../helpers.js";
import { STACK_RE, scaled } from "./support.js";

const POLICY = `
path "secret/data/*" { capabilities = ["read"] }
${PKI_LEASE_RULES}path "auth/approle/role/app/secret-id" { capabilities = ["update"] }
path "auth/approle/role/app/secret-id/lookup" { capabilities = ["update"] }
`;
const VAULT = { retries: 2, timeout: "2s" };

let trees: Tree[] = [];
afterEach(async () => {
  await Promise.all(trees.map((t) => t.cleanup()));
  trees = [];
});

async function tree(): Promise<Tree> {
  const t = await makeTree({ policy: POLICY, mode: "in-process" });
  trees.push(t);
  t.double.kvPut("secret", "app", { password: "p1" });
  return t;
}

const kvLayout = () => baseLayout({ vault: VAULT, sources: { app: { type: "kv", mount: "secret", path: "app", kvVersion: 2 } } });
const pkiLayout = () => baseLayout({ vault: VAULT, sources: {}, outputs: [{ format: "pki", dir: "certs/web", mount: "pki_int", role: "web", commonName: "web.home.arpa", ttl: "72h" }] });
const leaseLayout = () =>
  baseLayout({ vault: VAULT, sources: { db: { type: "lease", path: "database/creds/app" } }, outputs: [{ file: "db.env", format: "env", keys: { DB_USER: "db.username", DB_PASSWORD: "db.password" } }] });

function setupPki(t: Tree): void {
  t.double.mountPki("pki_int");
  // EC keys: nothing here depends on the key type, and the double's RSA key generation (0.3-1.5 s a key) would be the test's time.
  t.double.addPkiRole("pki_int", "web", { allowedDomains: ["home.arpa"], allowSubdomains: true, maxTtl: 30 * 86400, keyType: "ec" });
}
function setupDb(t: Tree): void {
  t.double.mountDatabase("database");
  t.double.addDbRole("database", "app", { defaultTtl: 3600, maxTtl: 7200 });
}

/** Remaining uses of a secret_id, as Vault's secret-id/lookup reports them (root token). */
async function usesLeft(t: Tree, secretId: string): Promise<number | null> {
  const res = await fetch(`${t.double.url}/v1/auth/approle/role/app/secret-id/lookup`, {
    method: "POST",
    headers: { "X-Vault-Token": t.double.rootToken, "Content-Type": "application/json" },
    body: JSON.stringify({ secret_id: secretId }),
  });
  if (res.status !== 200) return null;
  return ((await res.json()) as { data: { secret_id_num_uses: number } }).data.secret_id_num_uses;
}

function oneLine(stderr: string): string {
  const lines = stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  expect(stderr).not.toMatch(STACK_RE);
  return lines[0] as string;
}

describe("a connection dropped after Vault processed a request with a side effect", () => {
  it("AppRole login: one attempt, one secret_id use burned; the next run logs in with the use left", async () => {
    const t = await tree();
    // A role whose secret_ids have 2 uses.
    t.double.addAppRole({ roleName: "app", roleId: t.roleId, policies: ["app"], tokenTtl: 3600, tokenMaxTtl: 86400, secretIdNumUses: 2 });
    const sid = t.double.generateSecretId("app");
    if (!("secretId" in sid)) throw new Error("expected a plain secret_id");
    await writeFile(path.join(t.agentDir, "approle/secret_id"), sid.secretId + "\n", { mode: 0o600 });
    await t.writeLayout(kvLayout());
    t.double.addFault({ path: "auth/approle/login", dropAfter: true, times: 1 });
    const r1 = await t.run(["sync"]);
    expect(r1.code).toBe(3);
    expect(oneLine(r1.stderr)).toMatch(/write auth\/approle\/login: the connection to http:\/\/127\.0\.0\.1:\d+ was closed before an answer/);
    expect(t.double.countRequests({ path: "auth/approle/login" })).toBe(1);
    expect(await usesLeft(t, sid.secretId)).toBe(1);
    expect(await snapshot(t.publicDir)).toEqual(new Map());
    const r2 = await t.run(["sync"]);
    expect(r2).toMatchObject({ code: 0, stderr: "" });
    expect(t.double.countRequests({ path: "auth/approle/login" })).toBe(2);
    expect(await readFile(path.join(t.publicDir, "app.env"), "utf8")).toBe("DB_PASSWORD='p1'\n");
  });

  it("AppRole login: a 500, a 429 or a timeout after sending is not replayed either", async () => {
    const t = await tree();
    await t.writeLayout(kvLayout());
    for (const f of [{ status: 500 }, { status: 429 }, { hang: true }]) {
      t.double.clearRequests();
      t.double.clearFaults();
      t.double.addFault({ path: "auth/approle/login", ...f });
      const r = await t.run(["sync"]);
      expect({ f, code: r.code, logins: t.double.countRequests({ path: "auth/approle/login" }) }).toEqual({ f, code: 3, logins: 1 });
    }
    t.double.clearFaults();
    expect((await t.run(["sync"])).code).toBe(0);
  }, scaled(30_000));

  it("pki issue: one certificate issued, none written; the next run issues and writes one", async () => {
    const t = await tree();
    setupPki(t);
    await t.writeLayout(pkiLayout());
    t.double.addFault({ path: "pki_int/issue/web", dropAfter: true, times: 1 });
    const r1 = await t.run(["sync"]);
    expect(r1.code).toBe(3);
    expect(r1.stderr).toMatch(/certs\/web.*write pki_int\/issue\/web: the connection to .* was closed before an answer/);
    expect(t.double.countRequests({ path: "pki_int/issue/web" })).toBe(1);
    expect(t.double.pkiIssued("pki_int")).toHaveLength(1);
    expect(await snapshot(t.publicDir)).toEqual(new Map());
    const r2 = await t.run(["sync"]);
    expect(r2).toMatchObject({ code: 0, stderr: "" });
    expect(t.double.pkiIssued("pki_int")).toHaveLength(2);
  });

  it("database/creds: one set of credentials created, none written; the next run creates and writes one", async () => {
    const t = await tree();
    setupDb(t);
    await t.writeLayout(leaseLayout());
    t.double.addFault({ path: "database/creds/app", dropAfter: true, times: 1 });
    const r1 = await t.run(["sync"]);
    expect(r1.code).toBe(3);
    expect(r1.stderr).toMatch(/read database\/creds\/app: the connection to .* was closed before an answer/);
    expect(t.double.countRequests({ path: "database/creds/app" })).toBe(1);
    expect(t.double.activeLeases("database")).toHaveLength(1);
    expect(await snapshot(t.publicDir)).toEqual(new Map());
    const r2 = await t.run(["sync"]);
    expect(r2).toMatchObject({ code: 0, stderr: "" });
    expect(t.double.activeLeases("database")).toHaveLength(2);
    const env = await readFile(path.join(t.publicDir, "db.env"), "utf8");
    const [, user, pw] = /DB_USER='([^']+)'\nDB_PASSWORD='([^']+)'/.exec(env) ?? [];
    expect(t.double.dbCredentialValid(user as string, pw as string)).toBe(true);
  });

  it("rotate --secret-id: one secret_id created, the file keeps the old one, which still logs in", async () => {
    const t = await tree();
    const l = kvLayout();
    (l.auth as { approle: Record<string, unknown> }).approle.roleName = "app";
    await t.writeLayout(l);
    expect((await t.run(["sync"])).code).toBe(0);
    const old = await readFile(path.join(t.agentDir, "approle/secret_id"), "utf8");
    expect(t.double.secretIdCount("app")).toBe(1);
    t.double.addFault({ path: "auth/approle/role/app/secret-id", method: "POST", dropAfter: true, times: 1 });
    const r = await t.run(["rotate", "--secret-id"]);
    expect(r.code).toBe(3);
    expect(t.double.countRequests({ path: "auth/approle/role/app/secret-id" })).toBe(1);
    expect(t.double.secretIdCount("app")).toBe(2);
    expect(await readFile(path.join(t.agentDir, "approle/secret_id"), "utf8")).toBe(old);
    await rm(path.join(t.agentDir, "token"));
    expect((await t.run(["sync"])).code).toBe(0);
  });
});

describe("a standby's redirect is 'Vault unavailable': exit 3, nothing changed, the Location's host named, never a token", () => {
  // Userinfo and a path in the Location must never be printed: only host:port.
  const ACTIVE = "https://op:hvs.InTheLocation@active.vault.example:8200";
  const cases = [
    { kind: "token lookup (read)", vaultPath: "auth/token/lookup-self", op: "read", layout: kvLayout, setup: () => undefined, first: true },
    { kind: "AppRole login (write)", vaultPath: "auth/approle/login", op: "write", layout: kvLayout, setup: () => undefined, first: true, dropToken: true },
    { kind: "KV read", vaultPath: "secret/data/app", op: "read", layout: kvLayout, setup: () => undefined, first: true },
    { kind: "pki issue", vaultPath: "pki_int/issue/web", op: "write", layout: pkiLayout, setup: setupPki, first: false },
    { kind: "database/creds", vaultPath: "database/creds/app", op: "read", layout: leaseLayout, setup: setupDb, first: false },
  ];
  for (const status of [307, 308] as const) {
    it.each(cases)(`${status}: $kind`, async (c) => {
      const t = await tree();
      c.setup(t);
      await t.writeLayout(c.layout());
      // A first good run (a token cached, files in place) where the case allows it.
      if (c.first) expect((await t.run(["sync"])).code).toBe(0);
      if (c.dropToken) await rm(path.join(t.agentDir, "token"));
      const token = c.first && !c.dropToken ? (await readFile(path.join(t.agentDir, "token"), "utf8")).trim() : "hvs.";
      t.double.kvPut("secret", "app", { password: "p2" });
      t.double.clearRequests();
      t.double.addFault({ path: c.vaultPath, redirectTo: ACTIVE, redirectStatus: status });
      const before = await snapshot(t.publicDir);
      const r = await t.run(["sync"]);
      expect(r.code).toBe(3);
      const line = oneLine(r.stderr);
      expect(line).toContain(`${c.op} ${c.vaultPath}: Vault unavailable: HTTP ${status} redirect to active.vault.example:8200 (a standby`);
      expect(line).toMatch(/set the Vault address to the active node \(active\.vault\.example:8200\)/);
      expect(r.stderr).not.toContain(token);
      expect(r.stderr).not.toMatch(/hvs\.|\bop:|\/v1\//);
      expect(t.double.countRequests({ path: c.vaultPath })).toBe(1);
      expect(await snapshot(t.publicDir)).toEqual(before);
    });
  }

  it("check: a redirect on sys/health is reported and exits 3", async () => {
    const t = await tree();
    await t.writeLayout(kvLayout());
    expect((await t.run(["sync"])).code).toBe(0);
    t.double.addFault({ path: "sys/health", redirectTo: ACTIVE });
    const r = await t.run(["check", "--json"]);
    expect(r.code).toBe(3);
    const report = JSON.parse(r.stdout) as { findings: Array<{ check: string; severity: string; message: string }> };
    const f = report.findings.find((x) => x.check === "vault.reachable");
    expect(f).toMatchObject({ severity: "error" });
    expect(f?.message).toMatch(/read sys\/health: Vault unavailable: HTTP 307 redirect to active\.vault\.example:8200/);
    expect(r.stdout + r.stderr).not.toMatch(/hvs\.|\/v1\//);
  });
});
