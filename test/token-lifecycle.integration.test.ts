/**
 * Leases die with the token that created them (vault-api.md §5.3, §10), end to end: the built CLI
 * against the Vault double, whose clock and the CLI's (VAULT_RENDER_TEST_NOW_OFFSET) move
 * together. After a re-login (the token revoked, expired, or at its max TTL) the same sync run
 * replaces the lease, rewrites the file with credentials that are live in the double and runs the
 * hook; `check` fails on a lease whose token is gone; sync -v, check and policy warn when the
 * token's max TTL is shorter than a lease's TTL and name token_period.
 */
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Tree } from "./helpers.js";
import { baseLayout, makeTree } from "./helpers.js";

const POLICY = `
path "database/creds/app" { capabilities = ["read"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
`;

const HOOK_LOG = "hooks.log";

let trees: Tree[] = [];
afterEach(async () => {
  await Promise.all(trees.map((t) => t.cleanup()));
  trees = [];
});

/** AppRole tokens of 600 s, max TTL 1200 s; database leases of 3600 s (max 24 h). */
async function tree(): Promise<Tree> {
  const t = await makeTree({ policy: POLICY, tokenTtl: 600, tokenMaxTtl: 1200 });
  trees.push(t);
  t.double.mountDatabase("database");
  t.double.addDbRole("database", "app", { defaultTtl: 3600, maxTtl: 86400 });
  await t.writeLayout(
    baseLayout({
      auth: { approle: { roleIdFile: "approle/role_id", secretIdFile: "approle/secret_id", roleName: "app" } },
      sources: { db: { type: "lease", path: "database/creds/app" } },
      hooks: { "restart-app": { command: `printf '%s\\n' "$VAULT_RENDER_HOOK" >> ${HOOK_LOG}`, shell: true } },
      outputs: [{ file: "db.env", format: "env", keys: { DB_USER: "db.username", DB_PASSWORD: "db.password" }, hooks: ["restart-app"] }],
    }),
  );
  return t;
}

/** Move the double's clock by `sec`; returns the CLI env for the cumulative offset. */
function later(t: Tree & { offset?: number }, sec: number) {
  t.double.advanceTime(sec);
  t.offset = (t.offset ?? 0) + sec;
  return { env: { VAULT_RENDER_TEST_NOW_OFFSET: String(t.offset) } };
}
const now = (t: Tree & { offset?: number }) => ({ env: { VAULT_RENDER_TEST_NOW_OFFSET: String(t.offset ?? 0) } });

async function creds(t: Tree): Promise<{ user: string; password: string }> {
  const text = await readFile(path.join(t.publicDir, "db.env"), "utf8");
  return { user: /DB_USER='([^']+)'/.exec(text)?.[1] as string, password: /DB_PASSWORD='([^']+)'/.exec(text)?.[1] as string };
}
const live = async (t: Tree) => {
  const c = await creds(t);
  return t.double.dbCredentialValid(c.user, c.password);
};
const token = async (t: Tree) => (await readFile(path.join(t.agentDir, "token"), "utf8")).trim();
const leaseRec = async (t: Tree) =>
  (JSON.parse(await readFile(path.join(t.agentDir, "state.json"), "utf8")) as { leases: Record<string, { leaseId: string; tokenAccessor?: string }> }).leases.db as { leaseId: string; tokenAccessor?: string };
const logins = (t: Tree) => t.double.countRequests({ path: "auth/approle/login" });
async function hooks(t: Tree): Promise<number> {
  try {
    return (await readFile(path.join(t.dir, HOOK_LOG), "utf8")).trim().split("\n").filter(Boolean).length;
  } catch {
    return 0;
  }
}

/** After the run that logged in again: new credentials, live in the double, hook ran, old lease gone. */
async function expectReplaced(t: Tree, before: { user: string; password: string }, oldLease: string): Promise<void> {
  const after = await creds(t);
  expect(after.user).not.toBe(before.user);
  expect(await live(t)).toBe(true);
  expect(t.double.dbCredentialValid(before.user, before.password)).toBe(false);
  expect(await hooks(t)).toBe(2);
  const rec = await leaseRec(t);
  expect(rec.leaseId).not.toBe(oldLease);
  expect(rec.tokenAccessor).toBe(t.double.tokenInfo(await token(t))?.accessor);
  expect(t.double.leaseInfo(oldLease)?.revoked).toBe(true);
}

describe("leases die with the token that created them", () => {
  it("a revoked token: the same sync logs in again, replaces the lease, rewrites the file and runs the hook", async () => {
    const t = await tree();
    expect((await t.run(["sync"])).code).toBe(0);
    const first = await creds(t);
    const oldLease = (await leaseRec(t)).leaseId;
    expect(await live(t)).toBe(true);
    expect((await leaseRec(t)).tokenAccessor).toBe(t.double.tokenInfo(await token(t))?.accessor);
    t.double.revokeToken(await token(t));
    // Vault revoked the lease with the token: the file now holds dead credentials.
    expect(await live(t)).toBe(false);
    const r = await t.run(["sync", "-v"]);
    expect(r.code, r.stderr).toBe(0);
    expect(logins(t)).toBe(2);
    expect(r.stderr).toMatch(/lease db: replaced \(the token that created it \(accessor \w+\) is gone or going/);
    await expectReplaced(t, first, oldLease);
    // Healthy again: the next run leaves it alone.
    expect((await t.run(["sync"])).code).toBe(0);
    expect(t.double.countRequests({ path: "database/creds/app" })).toBe(2);
  });

  it("a token that expired between runs (past its max TTL): replaced in the run that logs in", async () => {
    const t = await tree();
    expect((await t.run(["sync"])).code).toBe(0);
    const first = await creds(t);
    const oldLease = (await leaseRec(t)).leaseId;
    const r = await t.run(["sync", "-v"], later(t, 1300));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/cached token is no longer valid; logging in/);
    expect(r.stderr).toMatch(/lease db: replaced \(the token that created it/);
    await expectReplaced(t, first, oldLease);
  });

  it("a token reaching its max TTL (advanceTime): renewal learns the max TTL and warns; the run that logs in replaces the lease before the old token dies", async () => {
    const t = await tree();
    expect((await t.run(["sync"], now(t))).code).toBe(0);
    const first = await creds(t);
    const oldLease = (await leaseRec(t)).leaseId;
    // 400 s: renewed (600 s, not capped). Nothing known about the max TTL yet: no warning.
    let r = await t.run(["sync", "-v"], later(t, 400));
    expect(r.stderr).toMatch(/renewed the cached token/);
    expect(r.stderr).not.toMatch(/max TTL/);
    // 900 s: the renewal is capped at the max TTL (1200 s): now known, and shorter than the lease's 1h.
    r = await t.run(["sync", "-v"], later(t, 500));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/renewed the cached token/);
    const warning = /warn: the AppRole token's max TTL \(20m\) is shorter than the TTL of lease "db" \(60m\): Vault revokes a lease with the token that created it.*token_period=/;
    expect(r.stderr).toMatch(warning);
    expect(logins(t)).toBe(1);
    // Not in the quiet cron output.
    r = await t.run(["sync"], now(t));
    expect(r).toMatchObject({ code: 0, stderr: "" });
    // check and policy say it too.
    const c = await t.run(["check", "--json"], now(t));
    expect(c.code, c.stdout).toBe(0);
    const report = JSON.parse(c.stdout) as { findings: Array<{ check: string; severity: string; message: string }> };
    const f = report.findings.find((x) => x.check === "token.max-ttl");
    expect(f?.severity).toBe("warning");
    expect(f?.message).toMatch(/max TTL \(20m\) is shorter than the TTL of lease "db".*vault write auth\/approle\/role\/app token_period=/);
    const p = await t.run(["policy"]);
    expect(p.code).toBe(0);
    expect(p.stdout).toMatch(/^# Vault policy/);
    expect(p.stderr).toMatch(/vault-render: warn: the AppRole token's max TTL \(20m\) is shorter than the TTL of lease "db"/);

    // 1150 s: the renewal can only give 50 s: log in again; the lease of the old token is replaced now.
    r = await t.run(["sync", "-v"], later(t, 250));
    expect(r.code, r.stderr).toBe(0);
    expect(logins(t)).toBe(2);
    expect(r.stderr).toMatch(/logged in with AppRole/);
    expect(r.stderr).toMatch(/lease db: replaced \(the token that created it/);
    expect(await hooks(t)).toBe(2);
    // 1250 s: the old token is past its max TTL and gone with its lease; the file's credentials live.
    later(t, 100);
    expect(t.double.tokenInfo(await token(t))).toBeDefined();
    await expectReplaced(t, first, oldLease);
  });

  it("check fails on a lease whose token is gone, and passes once sync replaced it", async () => {
    const t = await tree();
    expect((await t.run(["sync"])).code).toBe(0);
    t.double.revokeToken(await token(t));
    const c = await t.run(["check", "--json"]);
    expect(c.code, c.stdout).toBe(1);
    const report = JSON.parse(c.stdout) as { findings: Array<{ check: string; severity: string; subject: string; message: string }> };
    const lease = report.findings.filter((x) => x.check === "lease" && x.subject === "source db");
    expect(lease).toHaveLength(1);
    expect(lease[0]?.severity).toBe("error");
    expect(lease[0]?.message).toMatch(/the token that created this lease \(accessor \w+\) is not the token vault-render holds now \(the cached token is gone: revoked or expired\).*run sync to replace them/);
    const table = await t.run(["check"]);
    expect(table.code).toBe(1);
    expect(table.stdout).toMatch(/FAIL +lease +source db +the token that created this lease/);
    expect((await t.run(["sync"])).code).toBe(0);
    const again = await t.run(["check"]);
    expect(again.code, again.stdout).toBe(0);
    expect(again.stdout).toMatch(/ok +lease +source db +lease valid until/);
  });

  it("a periodic token (token_period): renewed indefinitely, the lease kept, no max-TTL warning", async () => {
    const t = await tree();
    t.double.addAppRole({ roleName: "app", roleId: t.roleId, policies: ["app"], tokenPeriod: 600 });
    const sid = t.double.generateSecretId("app") as { secretId: string };
    await writeFile(path.join(t.agentDir, "approle", "secret_id"), sid.secretId + "\n");
    expect((await t.run(["sync"], now(t))).code).toBe(0);
    const first = await creds(t);
    for (let i = 0; i < 5; i++) {
      const r = await t.run(["sync", "-v"], later(t, 400));
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).not.toMatch(/max TTL|lease db: replaced/);
    }
    expect(logins(t)).toBe(1);
    expect(await creds(t)).toEqual(first);
    expect(await live(t)).toBe(true);
    const c = await t.run(["check", "--json"], now(t));
    expect(c.code, c.stdout).toBe(0);
    expect(c.stdout).not.toContain("token.max-ttl");
  });
});
