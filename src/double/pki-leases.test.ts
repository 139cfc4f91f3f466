import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startVaultDouble } from "./vault-double.js";
import type { VaultDouble } from "./vault-double.js";
import { ENVELOPE_KEYS, PD1, client, rejected } from "./testing.js";

const exec = promisify(execFile);

async function raw(d: VaultDouble, method: string, path: string, init: { token?: string; body?: unknown } = {}) {
  const headers: Record<string, string> = {};
  if (init.token) headers["X-Vault-Token"] = init.token;
  const r = await fetch(`${d.url}${path}`, { method, headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
  return { status: r.status, headers: r.headers, text: await r.text() };
}

interface IssueData {
  certificate: string;
  issuing_ca: string;
  ca_chain: string[];
  private_key: string;
  private_key_type: string;
  serial_number: string;
  expiration: number;
}

describe("vault double: PKI", () => {
  let d: VaultDouble;
  let dir: string;
  beforeAll(async () => {
    d = await startVaultDouble();
    d.mountPki("pki_int");
    d.addPkiRole("pki_int", "web", { allowedDomains: ["home.arpa"], allowSubdomains: true, allowIpSans: true, ttl: 86400, maxTtl: 30 * 86400 });
    d.addPkiRole("pki_int", "ec", { allowAnyName: true, keyType: "ec", generateLease: true });
    d.addPolicy("pki", `path "pki_int/issue/web" { capabilities = ["create"] }`);
    d.addPolicy("pki-read", `path "pki_int/issue/web" { capabilities = ["read"] }`);
    dir = await mkdtemp(join(tmpdir(), "vd-pki-"));
  });
  afterAll(async () => {
    await d.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("issues a real certificate chain that X509Certificate and openssl verify", async () => {
    const v = client(d, d.rootToken);
    const t0 = d.now();
    const pool = d.keyPoolStats();
    const body = (await v.write("pki_int/issue/web", { common_name: "web.home.arpa", alt_names: "www.home.arpa, api.home.arpa", ip_sans: "10.0.0.5,::1", ttl: "72h" })) as Record<string, unknown>;
    // The RSA key came from the pool warmed when the role was added, not from keygen on the request path.
    expect(d.keyPoolStats()).toEqual({ fromPool: pool.fromPool + 1, onDemand: pool.onDemand });
    expect(Object.keys(body)).toEqual(ENVELOPE_KEYS);
    expect(body).toMatchObject({ lease_id: "", renewable: false, lease_duration: 0, warnings: null, mount_type: "pki" });
    const data = body["data"] as IssueData;
    expect(Object.keys(data)).toEqual(["ca_chain", "certificate", "expiration", "issuing_ca", "private_key", "private_key_type", "serial_number"]);
    expect(data.certificate).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----$/);
    expect(data.private_key).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
    expect(data.private_key_type).toBe("rsa");
    expect(data.serial_number).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){19}$/);
    expect(Number.isInteger(data.expiration)).toBe(true);

    const { root, intermediate } = d.pkiCaChain("pki_int");
    expect(data.issuing_ca).toBe(intermediate.trim());
    expect(data.ca_chain).toEqual([intermediate.trim(), root.trim()]);
    const leaf = new X509Certificate(data.certificate);
    const inter = new X509Certificate(intermediate);
    const rootCert = new X509Certificate(root);
    expect(leaf.checkIssued(inter)).toBe(true);
    expect(leaf.verify(inter.publicKey)).toBe(true);
    expect(inter.checkIssued(rootCert) && inter.verify(rootCert.publicKey)).toBe(true);
    expect(rootCert.verify(rootCert.publicKey)).toBe(true);
    expect(inter.ca && rootCert.ca && !leaf.ca).toBe(true);
    expect(leaf.checkPrivateKey(createPrivateKey(data.private_key))).toBe(true);
    expect(leaf.subject).toBe("CN=web.home.arpa");
    expect(leaf.subjectAltName).toBe("DNS:web.home.arpa, DNS:www.home.arpa, DNS:api.home.arpa, IP Address:10.0.0.5, IP Address:0:0:0:0:0:0:0:1");
    expect(leaf.serialNumber.toLowerCase()).toBe(data.serial_number.replace(/:/g, ""));
    const notAfter = Date.parse(leaf.validTo);
    expect(Math.abs(notAfter - (t0 + 72 * 3600 * 1000))).toBeLessThan(3000);
    expect(data.expiration).toBe(notAfter / 1000);
    expect(Date.parse(leaf.validFrom)).toBeLessThan(t0);
    expect(d.pkiIssued("pki_int")).toEqual([{ serial: data.serial_number, commonName: "web.home.arpa", notAfter }]);
    expect(d.countRequests({ path: "pki_int/issue/web" })).toBe(1);

    await writeFile(join(dir, "root.pem"), root);
    await writeFile(join(dir, "int.pem"), intermediate);
    await writeFile(join(dir, "cert.pem"), `${data.certificate}\n`);
    await writeFile(join(dir, "chain.pem"), `${data.certificate}\n${data.ca_chain.join("\n")}\n`);
    const r1 = await exec("openssl", ["verify", "-CAfile", join(dir, "root.pem"), "-untrusted", join(dir, "int.pem"), join(dir, "cert.pem")]);
    expect(r1.stdout).toMatch(/cert\.pem: OK/);
    const r2 = await exec("openssl", ["verify", "-CAfile", join(dir, "root.pem"), "-untrusted", join(dir, "chain.pem"), "-purpose", "sslserver", join(dir, "cert.pem")]);
    expect(r2.stdout).toMatch(/: OK/);
    // Without the intermediate the chain does not verify.
    await expect(exec("openssl", ["verify", "-CAfile", join(dir, "root.pem"), join(dir, "cert.pem")])).rejects.toThrow();
  });

  it("follows the double's clock, caps the TTL at max_ttl, supports pkcs8, EC, der, leases and the issuer path", async () => {
    const v = client(d, d.rootToken);
    d.advanceTime(10 * 86400);
    const capped = (await v.write("pki_int/issue/web", { common_name: "a.home.arpa", ttl: 90 * 86400, private_key_format: "pkcs8", remove_roots_from_chain: true })) as {
      data: IssueData;
      warnings: string[];
    };
    const leaf = new X509Certificate(capped.data.certificate);
    expect(Date.parse(leaf.validTo)).toBe(capped.data.expiration * 1000);
    expect(Math.abs(capped.data.expiration * 1000 - (d.now() + 30 * 86400 * 1000))).toBeLessThan(3000);
    expect(Math.abs(Date.parse(leaf.validFrom) - (d.now() - 30_000))).toBeLessThan(3000);
    expect(capped.warnings).toEqual(['TTL "2160h0m0s" is longer than permitted maxTTL "720h0m0s", so maxTTL is being used']);
    expect(capped.data.private_key).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(capped.data.ca_chain).toEqual([d.pkiCaChain("pki_int").intermediate.trim()]);
    expect(leaf.checkPrivateKey(createPrivateKey(capped.data.private_key))).toBe(true);
    // Default role TTL.
    const dflt = (await v.write("pki_int/issue/web", { common_name: "b.home.arpa" })) as { data: IssueData };
    expect(Math.abs(dflt.data.expiration * 1000 - (d.now() + 86400 * 1000))).toBeLessThan(3000);

    const ec = (await v.write("pki_int/issuer/default/issue/ec", { common_name: "anything.example", format: "der" })) as {
      data: IssueData;
      lease_id: string;
      lease_duration: number;
      renewable: boolean;
    };
    expect(ec.data.private_key_type).toBe("ec");
    const ecLeaf = new X509Certificate(Buffer.from(ec.data.certificate, "base64"));
    expect(ecLeaf.subject).toBe("CN=anything.example");
    expect(ecLeaf.checkPrivateKey(createPrivateKey({ key: Buffer.from(ec.data.private_key, "base64"), format: "der", type: "sec1" }))).toBe(true);
    expect(ecLeaf.checkIssued(new X509Certificate(Buffer.from(ec.data.issuing_ca, "base64")))).toBe(true);
    expect(ec.lease_id).toMatch(/^pki_int\/issue\/ec\/[0-9A-Za-z]{24}$/);
    expect(ec.renewable).toBe(false);
    expect(Math.abs(ec.lease_duration - 2764800)).toBeLessThanOrEqual(1);
    expect(d.leaseInfo(ec.lease_id)).toMatchObject({ renewable: false, revoked: false, username: "" });
    const pemEc = (await v.write("pki_int/issue/ec", { common_name: "x.example" })) as { data: IssueData };
    expect(pemEc.data.private_key).toMatch(/^-----BEGIN EC PRIVATE KEY-----\n/);
    const bundle = (await v.write("pki_int/issue/ec", { common_name: "y.example", format: "pem_bundle" })) as { data: IssueData };
    expect(bundle.data.certificate).toMatch(/^-----BEGIN EC PRIVATE KEY-----[\s\S]+-----BEGIN CERTIFICATE-----/);
  });

  it("returns Vault's 400s for role checks, formats and unknown roles, and checks the ACL", async () => {
    const v = client(d, d.rootToken);
    const cases: [string, Record<string, unknown>, string][] = [
      ["pki_int/issue/web", { common_name: "evil.example.com" }, "common name evil.example.com not allowed by this role"],
      ["pki_int/issue/web", { common_name: "home.arpa" }, "common name home.arpa not allowed by this role"],
      ["pki_int/issue/web", { common_name: "a.home.arpa", alt_names: "b.example.com" }, "subject alternate name b.example.com not allowed by this role"],
      ["pki_int/issue/ec", { common_name: "a.example", ip_sans: "10.0.0.1" }, "IP Subject Alternative Names are not allowed in this role, but was provided 10.0.0.1"],
      ["pki_int/issue/web", { common_name: "a.home.arpa", format: "jks" }, 'the "format" path parameter must be "pem", "der", or "pem_bundle"'],
      ["pki_int/issue/nope", { common_name: "a.home.arpa" }, "unknown role: nope"],
      ["pki_int/issuer/missing/issue/web", { common_name: "a.home.arpa" }, "unable to find PKI issuer for reference: missing"],
    ];
    for (const [path, body, msg] of cases) {
      const e = await rejected(v.write(path, body));
      expect(e.response.statusCode).toBe(400);
      expect(e.response.body).toEqual({ errors: [msg] });
    }
    // A policy with create (or update) may issue; read alone may not.
    const ok = d.createToken({ policies: ["pki"] });
    expect(((await client(d, ok).write("pki_int/issue/web", { common_name: "c.home.arpa" })) as { data: IssueData }).data.certificate).toBeTruthy();
    const no = d.createToken({ policies: ["pki-read"] });
    const e = await rejected(client(d, no).write("pki_int/issue/web", { common_name: "c.home.arpa" }));
    expect(e.response).toMatchObject({ statusCode: 403, body: { errors: [PD1] } });
    expect((await raw(d, "GET", "/v1/pki_int/issue/web", { token: d.rootToken })).status).toBe(405);
  });

  it("hands out a mismatched private key while the fault is on", async () => {
    const v = client(d, d.rootToken);
    d.setPkiMismatch("pki_int", true);
    const bad = (await v.write("pki_int/issue/web", { common_name: "m.home.arpa" })) as { data: IssueData };
    const badLeaf = new X509Certificate(bad.data.certificate);
    expect(bad.data.private_key).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/);
    expect(badLeaf.checkPrivateKey(createPrivateKey(bad.data.private_key))).toBe(false);
    expect(badLeaf.verify(new X509Certificate(d.pkiCaChain("pki_int").intermediate).publicKey)).toBe(true);
    d.setPkiMismatch("pki_int", false);
    const good = (await v.write("pki_int/issue/web", { common_name: "m.home.arpa" })) as { data: IssueData };
    expect(new X509Certificate(good.data.certificate).checkPrivateKey(createPrivateKey(good.data.private_key))).toBe(true);
  });
});

describe("vault double: dynamic secrets and leases", () => {
  let d: VaultDouble;
  beforeAll(async () => {
    d = await startVaultDouble();
    d.mountDatabase("database");
    d.addDbRole("database", "app", { defaultTtl: 3600, maxTtl: 7200 });
    d.addDbRole("database", "fixed", { defaultTtl: 600, maxTtl: 600, renewable: false });
    d.addPolicy("db", `path "database/creds/app" { capabilities = ["read"] }`);
    d.addPolicy("revoker", `path "sys/leases/revoke" { capabilities = ["update"] }`);
  });
  afterAll(() => d.close());

  it("issues leased credentials, renews up to max TTL, expires on the double's clock", async () => {
    const token = d.createToken({ policies: ["db"] });
    const v = client(d, token);
    const creds = (await v.read("database/creds/app")) as Record<string, unknown>;
    expect(Object.keys(creds)).toEqual(ENVELOPE_KEYS);
    expect(creds).toMatchObject({ renewable: true, lease_duration: 3600, mount_type: "database", auth: null, warnings: null });
    const leaseId = creds["lease_id"] as string;
    expect(leaseId).toMatch(/^database\/creds\/app\/[0-9A-Za-z]{24}$/);
    const { username, password } = creds["data"] as { username: string; password: string };
    expect(username).toMatch(/^v-token-app-[0-9A-Za-z]{20}-\d+$/);
    expect(password).toHaveLength(20);
    expect(d.dbCredentialValid(username, password)).toBe(true);
    const info = d.leaseInfo(leaseId);
    expect(info).toMatchObject({ renewable: true, revoked: false, expired: false, username });
    expect(Math.abs((info?.expiresAt ?? 0) - (d.now() + 3600_000))).toBeLessThan(2000);
    expect(d.activeLeases("database")).toEqual([leaseId]);

    // The default policy allows sys/leases/renew.
    d.advanceTime(1000);
    const r1 = (await v.write("sys/leases/renew", { lease_id: leaseId, increment: 1800 })) as Record<string, unknown>;
    expect(r1).toMatchObject({ lease_id: leaseId, renewable: true, lease_duration: 1800, data: null, warnings: null, mount_type: "system" });
    expect(Math.abs((d.leaseInfo(leaseId)?.expiresAt ?? 0) - (d.now() + 1800_000))).toBeLessThan(2000);
    // node-vault's renew command; no increment = the role's default TTL.
    const r2 = (await v.renew({ lease_id: leaseId })) as { lease_duration: number };
    expect(r2.lease_duration).toBe(3600);
    // Path form, duration string increment, capped at issue + max TTL (7200 - 4500 = 2700 s left).
    d.advanceTime(3500);
    // The default policy covers only the exact path sys/leases/renew, not the path form.
    const denied = await rejected(v.write(`sys/leases/renew/${leaseId}`, { increment: "1h" }));
    expect(denied.response).toMatchObject({ statusCode: 403, body: { errors: [PD1] } });
    const r3 = (await client(d, d.rootToken).write(`sys/leases/renew/${leaseId}`, { increment: "1h" })) as { lease_duration: number; warnings: string[] };
    expect(r3.lease_duration).toBe(2700);
    expect(r3.warnings).toEqual(['TTL of "1h0m0s" exceeded the effective max_ttl of "45m0s"; TTL value is capped accordingly']);
    const look = (await v.write("sys/leases/lookup", { lease_id: leaseId })) as { data: Record<string, unknown> };
    expect(Object.keys(look.data)).toEqual(["expire_time", "id", "issue_time", "last_renewal", "renewable", "ttl"]);
    expect(look.data).toMatchObject({ id: leaseId, renewable: true, ttl: 2700 });
    expect(look.data["last_renewal"]).toMatch(/^\d{4}-\d\d-\d\dT/);

    // Past expiry: gone.
    d.advanceTime(2701);
    expect(d.leaseInfo(leaseId)).toMatchObject({ expired: true, revoked: false });
    expect(d.dbCredentialValid(username, password)).toBe(false);
    expect(d.activeLeases()).toEqual([]);
    const e = await rejected(v.write("sys/leases/renew", { lease_id: leaseId, increment: 60 }));
    expect(e.response).toMatchObject({ statusCode: 400, body: { errors: ["lease not found"] } });
    const e2 = await rejected(v.write("sys/leases/lookup", { lease_id: leaseId }));
    expect(e2.response).toMatchObject({ statusCode: 400, body: { errors: ["invalid lease"] } });
  });

  it("refuses non-renewable and unknown leases, revokes with 204 and 202, enforces the ACL", async () => {
    const v = client(d, d.rootToken);
    const fixed = (await v.read("database/creds/fixed")) as { lease_id: string; renewable: boolean; lease_duration: number };
    expect(fixed).toMatchObject({ renewable: false, lease_duration: 600 });
    let e = await rejected(v.write("sys/leases/renew", { lease_id: fixed.lease_id }));
    expect(e.response).toMatchObject({ statusCode: 400, body: { errors: ["lease is not renewable"] } });
    e = await rejected(v.write("sys/leases/renew", { lease_id: "database/creds/app/nope" }));
    expect(e.response).toMatchObject({ statusCode: 400, body: { errors: ["lease not found"] } });
    e = await rejected(v.write("sys/leases/renew", { lease_id: d.rootToken }));
    expect(e.response.body).toEqual({ errors: ["tokens cannot be renewed through this endpoint"] });

    const a = (await v.read("database/creds/app")) as { lease_id: string; data: { username: string; password: string } };
    const b = (await v.read("database/creds/app")) as { lease_id: string };
    // Revoke is not in Vault's default policy.
    const dbTok = d.createToken({ policies: ["db"] });
    e = await rejected(client(d, dbTok).revoke({ lease_id: a.lease_id }));
    expect(e.response).toMatchObject({ statusCode: 403, body: { errors: [PD1] } });
    const revoker = client(d, d.createToken({ policies: ["revoker"] }));
    const r = await raw(d, "PUT", "/v1/sys/leases/revoke", { token: d.rootToken, body: { lease_id: a.lease_id } });
    expect(r).toMatchObject({ status: 204, text: "" });
    expect(d.leaseInfo(a.lease_id)?.revoked).toBe(true);
    expect(d.dbCredentialValid(a.data.username, a.data.password)).toBe(false);
    e = await rejected(v.write("sys/leases/renew", { lease_id: a.lease_id }));
    expect(e.response.body).toEqual({ errors: ["lease not found"] });
    const r202 = await raw(d, "POST", "/v1/sys/leases/revoke", { token: d.rootToken, body: { lease_id: b.lease_id, sync: false } });
    expect(r202).toMatchObject({ status: 202, text: "" });
    expect(r202.headers.get("content-type")).toBe("application/json");
    expect(d.leaseInfo(b.lease_id)?.revoked).toBe(true);
    await revoker.revoke({ lease_id: "database/creds/app/unknown" });
    e = await rejected(v.write("sys/leases/revoke", {}));
    expect(e.response.body).toEqual({ errors: ["lease_id must be specified"] });

    // Credentials need read on <mount>/creds/<role>; API revocation; unknown role.
    const c = (await client(d, dbTok).read("database/creds/app")) as { lease_id: string };
    e = await rejected(client(d, dbTok).read("database/creds/fixed"));
    expect(e.response.statusCode).toBe(403);
    expect(d.revokeLease(c.lease_id)).toBe(true);
    expect(d.revokeLease("nope")).toBe(false);
    expect(d.leaseInfo(c.lease_id)?.revoked).toBe(true);
    e = await rejected(v.read("database/creds/ghost"));
    expect(e.response).toMatchObject({ statusCode: 400, body: { errors: ["unknown role: ghost"] } });
    expect(d.activeLeases("database")).toEqual([fixed.lease_id]);
  });
});

describe("vault double: AppRole secret-id management", () => {
  let d: VaultDouble;
  beforeAll(async () => {
    d = await startVaultDouble();
    d.addAppRole({ roleName: "app", policies: [], secretIdTtl: 3600 });
    d.addPolicy(
      "rotator",
      `path "auth/approle/role/app/secret-id" { capabilities = ["update"] }
       path "auth/approle/role/app/secret-id/*" { capabilities = ["update"] }
       path "auth/approle/role/app/secret-id-accessor/*" { capabilities = ["update"] }`,
    );
  });
  afterAll(() => d.close());

  it("looks up and destroys secret-ids by value and by accessor", async () => {
    const rot = client(d, d.createToken({ policies: ["rotator"] }));
    const roleId = ((await client(d, d.rootToken).read("auth/approle/role/app/role-id")) as { data: { role_id: string } }).data.role_id;
    const gen = async () => ((await rot.write("auth/approle/role/app/secret-id", { metadata: '{"host":"a"}' })) as { data: { secret_id: string; secret_id_accessor: string } }).data;
    const s1 = await gen();
    const s2 = await gen();
    expect(d.secretIdCount("app")).toBe(2);

    const look = (await rot.approleSecretLookup({ role_name: "app", secret_id: s1.secret_id })) as { data: Record<string, unknown>; mount_type: string };
    expect(Object.keys(look.data)).toEqual([
      "cidr_list",
      "creation_time",
      "expiration_time",
      "last_updated_time",
      "metadata",
      "secret_id_accessor",
      "secret_id_num_uses",
      "secret_id_ttl",
      "token_bound_cidrs",
    ]);
    expect(look.data).toMatchObject({ secret_id_accessor: s1.secret_id_accessor, secret_id_ttl: 3600, secret_id_num_uses: 0, metadata: { host: "a" }, cidr_list: [] });
    const byAcc = (await rot.write("auth/approle/role/app/secret-id-accessor/lookup", { secret_id_accessor: s2.secret_id_accessor })) as { data: { secret_id_accessor: string } };
    expect(byAcc.data.secret_id_accessor).toBe(s2.secret_id_accessor);

    // Destroy by value: 204, lookup then 204, login fails.
    expect(await raw(d, "POST", "/v1/auth/approle/role/app/secret-id/destroy", { token: d.rootToken, body: { secret_id: s1.secret_id } })).toMatchObject({ status: 204, text: "" });
    expect(await raw(d, "POST", "/v1/auth/approle/role/app/secret-id/lookup", { token: d.rootToken, body: { secret_id: s1.secret_id } })).toMatchObject({ status: 204, text: "" });
    let e = await rejected(client(d).approleLogin({ role_id: roleId, secret_id: s1.secret_id }));
    expect(e.response).toMatchObject({ statusCode: 400, body: { errors: ["invalid role or secret ID"] } });
    expect(d.secretIdCount("app")).toBe(1);

    // Destroy by accessor.
    await client(d).approleLogin({ role_id: roleId, secret_id: s2.secret_id });
    await rot.write("auth/approle/role/app/secret-id-accessor/destroy", { secret_id_accessor: s2.secret_id_accessor });
    e = await rejected(client(d).approleLogin({ role_id: roleId, secret_id: s2.secret_id }));
    expect(e.response.statusCode).toBe(400);
    expect(d.secretIdCount("app")).toBe(0);
    e = await rejected(rot.write("auth/approle/role/app/secret-id-accessor/lookup", { secret_id_accessor: s2.secret_id_accessor }));
    expect(e.response).toMatchObject({ statusCode: 400, body: { errors: [`failed to find accessor entry for secret_id_accessor: "${s2.secret_id_accessor}"`] } });
    e = await rejected(rot.write("auth/approle/role/app/secret-id/destroy", {}));
    expect(e.response.body).toEqual({ errors: ["missing secret_id"] });

    // Expired secret-ids are not counted; other tokens need update on the path.
    await gen();
    d.advanceTime(3601);
    expect(d.secretIdCount("app")).toBe(0);
    const plain = client(d, d.createToken({ policies: [] }));
    e = await rejected(plain.write("auth/approle/role/app/secret-id/destroy", { secret_id: "x" }));
    expect(e.response).toMatchObject({ statusCode: 403, body: { errors: [PD1] } });
  });
});
