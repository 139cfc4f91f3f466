/**
 * The double's lifecycle model (vault-api.md §5.3, §10): leases die with the token that created
 * them — on revoke-self, on auth/token/revoke, with a revoked parent, at the token's expiry on
 * the double's clock, after its last use — and every lease endpoint then treats them as gone.
 * Policies are resolved by name on each request, so a policy edit applies to a live token.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startVaultDouble } from "./vault-double.js";
import type { VaultDouble } from "./vault-double.js";
import { PD1, PD2, client, rejected } from "./testing.js";

const DB_POLICY = `
path "database/creds/app" { capabilities = ["read"] }
path "pki_int/issue/web" { capabilities = ["update"] }
path "auth/token/create" { capabilities = ["update"] }
path "auth/token/create-orphan" { capabilities = ["update", "sudo"] }
`;

interface Creds {
  lease_id: string;
  lease_duration: number;
  data: { username: string; password: string };
}

async function raw(d: VaultDouble, method: string, path: string, token: string, body?: unknown) {
  const r = await fetch(`${d.url}${path}`, { method, headers: { "X-Vault-Token": token }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: r.status, text: await r.text() };
}

/** Every lease endpoint answers a gone lease as Vault does (renew 400, lookup 400, revoke 204). */
async function expectGone(d: VaultDouble, c: Creds): Promise<void> {
  const root = client(d, d.rootToken);
  expect(d.leaseInfo(c.lease_id)?.revoked).toBe(true);
  expect(d.dbCredentialValid(c.data.username, c.data.password)).toBe(false);
  expect(d.activeLeases()).not.toContain(c.lease_id);
  expect((await rejected(root.write("sys/leases/renew", { lease_id: c.lease_id, increment: 60 }))).response).toEqual({ statusCode: 400, body: { errors: ["lease not found"] } });
  expect((await rejected(root.write("sys/leases/lookup", { lease_id: c.lease_id }))).response).toEqual({ statusCode: 400, body: { errors: ["invalid lease"] } });
  expect(await raw(d, "PUT", "/v1/sys/leases/revoke", d.rootToken, { lease_id: c.lease_id })).toEqual({ status: 204, text: "" });
}

function expectLive(d: VaultDouble, c: Creds): void {
  expect(d.leaseInfo(c.lease_id)).toMatchObject({ revoked: false, expired: false });
  expect(d.dbCredentialValid(c.data.username, c.data.password)).toBe(true);
}

describe("vault double: leases die with the token that created them", () => {
  let d: VaultDouble;
  let roleId: string;
  beforeAll(async () => {
    d = await startVaultDouble();
    d.mountDatabase("database");
    d.addDbRole("database", "app", { defaultTtl: 3600, maxTtl: 86400 });
    d.mountPki("pki_int");
    d.addPkiRole("pki_int", "web", { allowedDomains: ["home.arpa"], allowSubdomains: true, generateLease: true, ttl: 7200 });
    d.addPolicy("db", DB_POLICY);
    roleId = d.addAppRole({ roleName: "app", policies: ["db"], tokenTtl: 600, tokenMaxTtl: 1200 }).roleId;
  });
  afterAll(() => d.close());

  async function login(): Promise<{ token: string; accessor: string }> {
    const { secretId } = d.generateSecretId("app") as { secretId: string };
    const r = (await client(d).approleLogin({ role_id: roleId, secret_id: secretId })) as { auth: { client_token: string; accessor: string } };
    return { token: r.auth.client_token, accessor: r.auth.accessor };
  }

  it("records the creating token's accessor on each lease", async () => {
    const t = await login();
    const c = (await client(d, t.token).read("database/creds/app")) as Creds;
    expect(d.leaseInfo(c.lease_id)?.tokenAccessor).toBe(t.accessor);
    expect(d.tokenInfo(t.token)?.accessor).toBe(t.accessor);
  });

  it("revoke-self revokes the token's leases, its child tokens and their leases; an orphan child survives", async () => {
    const parent = d.createToken({ policies: ["db"], ttl: 3600 });
    const pv = client(d, parent);
    const child = ((await pv.tokenCreate({ policies: ["db"], ttl: "1h" })) as { auth: { client_token: string } }).auth.client_token;
    const grandchild = ((await client(d, child).tokenCreate({ policies: ["db"], ttl: "1h" })) as { auth: { client_token: string } }).auth.client_token;
    const orphan = ((await pv.write("auth/token/create-orphan", { policies: ["db"], ttl: "1h" })) as { auth: { client_token: string } }).auth.client_token;
    const own = (await pv.read("database/creds/app")) as Creds;
    const childLease = (await client(d, child).read("database/creds/app")) as Creds;
    const grandLease = (await client(d, grandchild).read("database/creds/app")) as Creds;
    const orphanLease = (await client(d, orphan).read("database/creds/app")) as Creds;
    const cert = (await pv.write("pki_int/issue/web", { common_name: "a.home.arpa" })) as { lease_id: string };
    expect(cert.lease_id).toMatch(/^pki_int\/issue\/web\//);
    for (const c of [own, childLease, grandLease, orphanLease]) expectLive(d, c);

    expect(await raw(d, "POST", "/v1/auth/token/revoke-self", parent)).toEqual({ status: 204, text: "" });
    for (const tok of [parent, child, grandchild]) {
      expect(await raw(d, "GET", "/v1/auth/token/lookup-self", tok)).toEqual({ status: 403, text: `{"errors":[${JSON.stringify(PD2)}]}\n` });
      expect(d.tokenInfo(tok)).toBeUndefined();
    }
    for (const c of [own, childLease, grandLease]) await expectGone(d, c);
    expect(d.leaseInfo(cert.lease_id)?.revoked).toBe(true);
    expectLive(d, orphanLease);
    expect(d.tokenInfo(orphan)).toBeDefined();
  });

  it("auth/token/revoke and revokeToken revoke the leases too", async () => {
    const a = d.createToken({ policies: ["db"] });
    const b = d.createToken({ policies: ["db"] });
    const ca = (await client(d, a).read("database/creds/app")) as Creds;
    const cb = (await client(d, b).read("database/creds/app")) as Creds;
    expect(await raw(d, "POST", "/v1/auth/token/revoke", d.rootToken, { token: a })).toEqual({ status: 204, text: "" });
    await expectGone(d, ca);
    expectLive(d, cb);
    d.revokeToken(b);
    await expectGone(d, cb);
  });

  it("a token's expiry on the double's clock (advanceTime) revokes its leases", async () => {
    const t = await login();
    const c = (await client(d, t.token).read("database/creds/app")) as Creds;
    // The lease (3600 s) outlives the token (600 s): it dies with the token, not at its own TTL.
    expect(c.lease_duration).toBe(3600);
    d.advanceTime(599);
    expectLive(d, c);
    d.advanceTime(2);
    await expectGone(d, c);
    expect(d.leaseInfo(c.lease_id)?.expired).toBe(false);
  });

  it("a token that reaches its max TTL takes its leases with it, however often it was renewed", async () => {
    const t = await login();
    const v = client(d, t.token);
    const c = (await v.read("database/creds/app")) as Creds;
    d.advanceTime(500);
    expect(((await v.tokenRenewSelf({ increment: 600 })) as { auth: { lease_duration: number } }).auth.lease_duration).toBe(600);
    d.advanceTime(500);
    // Capped at the max TTL (1200 s after login): 200 s left.
    expect(((await v.tokenRenewSelf({ increment: 600 })) as { auth: { lease_duration: number } }).auth.lease_duration).toBe(200);
    expect((await v.write("sys/leases/renew", { lease_id: c.lease_id, increment: 3600 })) as { lease_duration: number }).toMatchObject({ lease_duration: 3600 });
    d.advanceTime(199);
    expectLive(d, c);
    d.advanceTime(2);
    await expectGone(d, c);
    expect((await rejected(v.read("database/creds/app"))).message).toBe(PD2);
  });

  it("a token's last use revokes it and the lease that use created", async () => {
    const t = d.createToken({ policies: ["db"], numUses: 1 });
    const c = (await client(d, t).read("database/creds/app")) as Creds;
    await expectGone(d, c);
  });

  it("leases created with the root token live on (the root token does not expire)", async () => {
    const c = (await client(d, d.rootToken).read("database/creds/app")) as Creds;
    d.advanceTime(1800);
    expectLive(d, c);
  });
});

describe("vault double: periodic tokens (token_period)", () => {
  it("get the period as TTL at login and on every renewal, and outlive any max TTL", async () => {
    const d = await startVaultDouble();
    try {
      d.mountDatabase("database");
      d.addDbRole("database", "app", { defaultTtl: 3600, maxTtl: 86400 });
      d.addPolicy("db", DB_POLICY);
      const { roleId } = d.addAppRole({ roleName: "p", policies: ["db"], tokenPeriod: 600, tokenTtl: 60, tokenMaxTtl: 120 });
      const { secretId } = d.generateSecretId("p") as { secretId: string };
      const login = (await client(d).approleLogin({ role_id: roleId, secret_id: secretId })) as { auth: { client_token: string; lease_duration: number } };
      expect(login.auth.lease_duration).toBe(600);
      const v = client(d, login.auth.client_token);
      const look = (await v.tokenLookupSelf()) as { data: Record<string, unknown> };
      expect(look.data).toMatchObject({ period: 600, ttl: 600, creation_ttl: 600, explicit_max_ttl: 0 });
      const c = (await v.read("database/creds/app")) as Creds;
      for (let i = 0; i < 10; i++) {
        d.advanceTime(500);
        const r = (await v.tokenRenewSelf({ increment: 7200 })) as { auth: { lease_duration: number }; warnings: unknown };
        expect(r.auth.lease_duration).toBe(600);
        expect(r.warnings).toBeNull();
        if (i % 3 === 0) await v.write("sys/leases/renew", { lease_id: c.lease_id, increment: 3600 });
      }
      expectLive(d, c);
      d.advanceTime(601);
      await expectGone(d, c);
    } finally {
      await d.close();
    }
  });
});

describe("vault double: policies are resolved by name at request time", () => {
  it("a policy written, edited or deleted applies to a live token without a new login", async () => {
    const d = await startVaultDouble();
    try {
      d.mountKv("secret", 2);
      d.kvPut("secret", "app", { k: "v" });
      d.kvPut("secret", "other", { k: "w" });
      const { roleId } = d.addAppRole({ roleName: "app", policies: ["app", "later"] });
      const { secretId } = d.generateSecretId("app") as { secretId: string };
      const token = ((await client(d).approleLogin({ role_id: roleId, secret_id: secretId })) as { auth: { client_token: string } }).auth.client_token;
      const v = client(d, token);
      const root = client(d, d.rootToken);
      // Neither policy exists yet: the token is valid but allowed nothing beyond default.
      expect((await rejected(v.read("secret/data/app"))).message).toBe(PD1);
      await root.addPolicy({ name: "app", rules: `path "secret/data/app" { capabilities = ["read"] }` });
      expect(((await v.read("secret/data/app")) as { data: { data: unknown } }).data.data).toEqual({ k: "v" });
      expect((await rejected(v.read("secret/data/other"))).message).toBe(PD1);
      // Edited through the API: the new rules apply to the same token at once.
      await root.addPolicy({ name: "app", rules: `path "secret/data/other" { capabilities = ["read"] }` });
      expect((await rejected(v.read("secret/data/app"))).message).toBe(PD1);
      expect(((await v.read("secret/data/other")) as { data: { data: unknown } }).data.data).toEqual({ k: "w" });
      // A policy the token names that did not exist at login.
      d.addPolicy("later", `path "secret/data/app" { capabilities = ["read"] }`);
      expect(((await v.read("secret/data/app")) as { data: { data: unknown } }).data.data).toEqual({ k: "v" });
      // Deleted: gone for the live token too.
      await root.removePolicy({ name: "later" });
      await root.removePolicy({ name: "app" });
      expect((await rejected(v.read("secret/data/app"))).message).toBe(PD1);
      expect((await rejected(v.read("secret/data/other"))).message).toBe(PD1);
      expect(d.tokenInfo(token)?.policies).toEqual(["app", "default", "later"]);
    } finally {
      await d.close();
    }
  });
});
