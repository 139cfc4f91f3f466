import { describe, it, expect, beforeAll, afterAll } from "vitest";
import vault from "node-vault";
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import ts from "typescript";
import { startVaultDouble, multiError, parseDurationSecond, goDuration } from "./vault-double.js";
import type { VaultDouble } from "./vault-double.js";
import { Acl, parsePolicy } from "./acl.js";
import { ENVELOPE_KEYS, PD1, PD2, client, rejected } from "./testing.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const RFC3339NANO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/;


async function raw(d: VaultDouble, method: string, path: string, init: { token?: string; body?: string; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...init.headers };
  if (init.token) headers["X-Vault-Token"] = init.token;
  const r = await fetch(`${d.url}${path}`, { method, headers, body: init.body });
  return { status: r.status, headers: r.headers, text: await r.text() };
}

describe("vault double: envelope, errors, KV", () => {
  let d: VaultDouble;
  beforeAll(async () => {
    d = await startVaultDouble();
    d.mountKv("secret", 2);
    d.mountKv("kv1", 1);
    d.kvPut("secret", "app", { username: "app", password: "s3cr3t" });
    d.kvPut("kv1", "plain", { foo: "bar" });
    d.kvPut("kv1", "withttl", { foo: "bar", ttl: "1h" });
    d.kvPut("kv1", "dir/a", { x: "1" });
    d.addPolicy("app-read", `# app policy\npath "secret/data/app" { capabilities = ["read"] }\n// other\npath "kv1/*" { capabilities = ["read", "list"] }`);
  });
  afterAll(() => d.close());

  it("serves the standard envelope with exact field order, headers and trailing newline", async () => {
    const r = await raw(d, "GET", "/v1/secret/data/app", { token: d.rootToken });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("application/json");
    expect(r.headers.get("cache-control")).toBe("no-store");
    expect(r.text.endsWith("}\n")).toBe(true);
    const body = JSON.parse(r.text) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual(ENVELOPE_KEYS);
    expect(body["request_id"]).toMatch(UUID);
    expect(body).toMatchObject({ lease_id: "", renewable: false, lease_duration: 0, wrap_info: null, warnings: null, auth: null, mount_type: "kv" });
    const data = body["data"] as { data: unknown; metadata: Record<string, unknown> };
    expect(data.data).toEqual({ password: "s3cr3t", username: "app" });
    expect(Object.keys(data.data as object)).toEqual(["password", "username"]); // Go map order
    expect(data.metadata).toMatchObject({ custom_metadata: null, deletion_time: "", destroyed: false, version: 1 });
    expect(data.metadata["created_time"]).toMatch(RFC3339NANO);
    const again = JSON.parse((await raw(d, "GET", "/v1/secret/data/app", { token: d.rootToken })).text) as { request_id: string };
    expect(again.request_id).not.toBe(body["request_id"]);
  });

  it("routes only under /v1/, rejects unknown verbs and bad list values", async () => {
    expect(await raw(d, "GET", "/v2/secret/data/app")).toMatchObject({ status: 404, text: '{"errors":[]}\n' });
    expect(await raw(d, "PROPFIND", "/v1/secret/data/app", { token: d.rootToken })).toMatchObject({ status: 405, text: '{"errors":[]}\n' });
    expect(await raw(d, "GET", "/v1/kv1/?list=maybe", { token: d.rootToken })).toMatchObject({ status: 400, text: '{"errors":[]}\n' });
    expect(await raw(d, "POST", "/v1/kv1/x", { token: d.rootToken, body: "{nope" })).toMatchObject({ status: 400, text: '{"errors":["error parsing JSON"]}\n' });
    const p = await raw(d, "PATCH", "/v1/secret/data/app", { token: d.rootToken, body: "{}", headers: { "Content-Type": "application/json" } });
    expect(p).toMatchObject({ status: 415, text: '{"errors":["PATCH requires Content-Type of application/merge-patch+json, provided application/json"]}\n' });
  });

  it("returns the three different 403 bodies", async () => {
    const noToken = await raw(d, "GET", "/v1/secret/data/app");
    expect(noToken).toMatchObject({ status: 403, text: '{"errors":["permission denied"]}\n' });
    const limited = d.createToken({ policies: ["app-read"] });
    const denied = await rejected(client(d, limited).read("secret/data/other"));
    expect(denied.response.statusCode).toBe(403);
    expect(denied.message).toBe(PD1);
    const bad = await rejected(client(d, "hvs.doesnotexist").read("secret/data/app"));
    expect(bad.response.statusCode).toBe(403);
    expect(bad.message).toBe(PD2);
    expect(bad.response.body).toEqual({ errors: [PD2] });
    expect(multiError("permission denied", "invalid token")).toBe(PD2);
    // allowed
    const okRead = (await client(d, limited).read("secret/data/app")) as { data: { data: unknown } };
    expect(okRead.data.data).toEqual({ username: "app", password: "s3cr3t" });
  });

  it("answers no handler for route for a path without a mount (root) and 403 for others", async () => {
    const r = await raw(d, "GET", "/v1/nomount/foo", { token: d.rootToken });
    expect(r).toMatchObject({ status: 404, text: '{"errors":["no handler for route \\"nomount/foo\\". route entry not found."]}\n' });
    const limited = d.createToken({ policies: ["app-read"] });
    expect((await raw(d, "GET", "/v1/nomount/foo", { token: limited })).status).toBe(403);
  });

  it("KV v1: read with lease_duration, list, write 204, delete 204, missing 404", async () => {
    const v = client(d, d.rootToken);
    const plain = (await v.read("kv1/plain")) as Record<string, unknown>;
    expect(plain).toMatchObject({ lease_duration: 2764800, lease_id: "", renewable: false, data: { foo: "bar" }, mount_type: "kv" });
    expect(((await v.read("kv1/withttl")) as { lease_duration: number }).lease_duration).toBe(3600);
    expect(((await v.list("kv1")) as { data: { keys: string[] } }).data.keys).toEqual(["dir/", "plain", "withttl"]);
    const w = await raw(d, "POST", "/v1/kv1/new", { token: d.rootToken, body: '{"a":"b"}' });
    expect(w.status).toBe(204);
    expect(w.text).toBe("");
    expect(w.headers.get("content-type")).toBe("application/json");
    expect(w.headers.get("cache-control")).toBe("no-store");
    expect(await raw(d, "POST", "/v1/kv1/new", { token: d.rootToken, body: "{}" })).toMatchObject({ status: 400, text: '{"errors":["missing data fields"]}\n' });
    expect(await v.delete("kv1/new")).toBe("");
    const missing = await rejected(v.read("kv1/new"));
    expect(missing.message).toBe("Status 404");
    expect(missing.response).toEqual({ statusCode: 404, body: { errors: [] } });
    expect((await rejected(v.list("kv1/nothing"))).response.statusCode).toBe(404);
  });

  it("KV v2: versions, CAS, patch, metadata, list", async () => {
    const v = client(d, d.rootToken);
    const w1 = (await v.write("secret/data/cas", { data: { a: 1 }, options: { cas: 0 } })) as { data: Record<string, unknown> };
    expect(w1.data).toMatchObject({ version: 1, deletion_time: "", destroyed: false, custom_metadata: null });
    const casErr = await rejected(v.write("secret/data/cas", { data: { a: 2 }, options: { cas: 0 } }));
    expect(casErr.response).toEqual({ statusCode: 400, body: { errors: ["check-and-set parameter did not match the current version"] } });
    await v.write("secret/data/cas", { data: { a: 2, b: 3 }, options: { cas: "1" } });
    expect((await rejected(v.write("secret/data/cas", { options: {} }))).message).toBe("no data provided");
    const patched = (await v.update("secret/data/cas", { data: { b: null, c: 4 } })) as { data: { version: number } };
    expect(patched.data.version).toBe(3);
    expect(((await v.read("secret/data/cas")) as { data: { data: unknown } }).data.data).toEqual({ a: 2, c: 4 });
    expect(((await v.read("secret/data/cas?version=1")) as { data: { data: unknown } }).data.data).toEqual({ a: 1 });
    const beyond = await raw(d, "GET", "/v1/secret/data/cas?version=9", { token: d.rootToken });
    expect(beyond).toMatchObject({ status: 404, text: '{"errors":[]}\n' });
    const meta = (await v.read("secret/metadata/cas")) as { data: Record<string, unknown> };
    expect(meta.data).toMatchObject({ current_version: 3, oldest_version: 1, delete_version_after: "0s", cas_required: false, custom_metadata: null, max_versions: 0 });
    expect(Object.keys(meta.data["versions"] as object)).toEqual(["1", "2", "3"]);
    const list = (await v.list("secret/metadata")) as { data: { keys: string[] } };
    expect(list.data.keys).toEqual(["app", "cas"]);
    expect(d.kvCurrent("secret", "cas")).toEqual({ version: 3, data: { a: 2, c: 4 } });
  });

  it("KV v2: deleted and destroyed versions give the raw 404 envelope (node-vault err.response.body)", async () => {
    d.kvPut("secret", "gone", { k: "v1" });
    d.kvPut("secret", "gone", { k: "v2" });
    d.kvSoftDelete("secret", "gone");
    const r = await raw(d, "GET", "/v1/secret/data/gone", { token: d.rootToken });
    expect(r.status).toBe(404);
    expect(r.headers.get("content-type")).toBe("application/json");
    expect(r.headers.get("cache-control")).toBe("no-store");
    expect(r.text.endsWith("}")).toBe(true); // raw: no trailing newline
    const body = JSON.parse(r.text) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual(ENVELOPE_KEYS);
    expect(body["errors"]).toBeUndefined();
    expect(body["mount_type"]).toBe("");
    expect(body["request_id"]).toMatch(UUID);
    const data = body["data"] as { data: unknown; metadata: Record<string, unknown> };
    expect(data.data).toBeNull();
    expect(data.metadata).toMatchObject({ version: 2, destroyed: false, custom_metadata: null });
    expect(data.metadata["deletion_time"]).toMatch(RFC3339NANO);

    const v = client(d, d.rootToken);
    const e = await rejected(v.read("secret/data/gone"));
    expect(e.message).toBe("Status 404");
    expect(e.response.statusCode).toBe(404);
    expect((e.response.body as { data: { metadata: { version: number } } }).data.metadata.version).toBe(2);

    // old version still readable; destroy it and see destroyed=true
    expect(((await v.read("secret/data/gone?version=1")) as { data: { data: unknown } }).data.data).toEqual({ k: "v1" });
    await v.write("secret/destroy/gone", { versions: [1] });
    const destroyed = await rejected(v.read("secret/data/gone?version=1"));
    expect((destroyed.response.body as { data: { metadata: unknown } }).data.metadata).toMatchObject({ deletion_time: "", destroyed: true, version: 1 });
    await v.write("secret/undelete/gone", { versions: [2] });
    expect(((await v.read("secret/data/gone")) as { data: { data: unknown } }).data.data).toEqual({ k: "v2" });
    expect(await v.delete("secret/data/gone")).toBe("");
    expect(d.kvCurrent("secret", "gone")).toEqual({ version: 2, data: null });
  });

  it("KV v2: a path without data/ is 404 with warnings and no errors", async () => {
    const r = await raw(d, "GET", "/v1/secret/app", { token: d.rootToken });
    expect(r.status).toBe(404);
    const body = JSON.parse(r.text) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual(ENVELOPE_KEYS);
    expect(body["warnings"]).toEqual([
      "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation.",
    ]);
    expect(body["data"]).toBeNull();
  });

  it("KV preflight: 200 with string version, 403 for no access or no mount", async () => {
    const v = client(d, d.rootToken);
    const v2 = (await v.read("sys/internal/ui/mounts/secret/team/app")) as { data: Record<string, unknown>; mount_type: string };
    expect(v2.mount_type).toBe("system");
    expect(v2.data).toMatchObject({ path: "secret/", type: "kv", options: { version: "2" }, description: "key/value secret storage" });
    expect(Object.keys(v2.data)).toEqual([
      "accessor", "config", "description", "external_entropy_access", "local", "options", "path",
      "plugin_version", "running_plugin_version", "running_sha256", "seal_wrap", "type", "uuid",
    ]);
    const v1 = (await v.read("sys/internal/ui/mounts/kv1/plain")) as { data: Record<string, unknown> };
    expect(v1.data).toMatchObject({ path: "kv1/", options: null });
    const missing = await raw(d, "GET", "/v1/sys/internal/ui/mounts/nope/x", { token: d.rootToken });
    expect(missing.status).toBe(403);
    expect(missing.text).toBe(
      '{"errors":["preflight capability check returned 403, please ensure client\'s policies grant access to path \\"nope/x/\\""]}\n',
    );
    d.addPolicy("other", `path "elsewhere/*" { capabilities = ["read"] }`);
    const other = d.createToken({ policies: ["other"] });
    expect((await raw(d, "GET", "/v1/sys/internal/ui/mounts/secret/app", { token: other })).status).toBe(403);
    const limited = d.createToken({ policies: ["app-read"] });
    expect((await raw(d, "GET", "/v1/sys/internal/ui/mounts/secret/app", { token: limited })).status).toBe(200);
  });

  it("generic paths serve a plain read envelope", async () => {
    d.setGeneric("database/creds/app", { username: "u", password: "p" }, { leaseId: "database/creds/app/abc", leaseDuration: 3600, renewable: true });
    const r = (await client(d, d.rootToken).read("database/creds/app")) as Record<string, unknown>;
    expect(r).toMatchObject({ lease_id: "database/creds/app/abc", lease_duration: 3600, renewable: true, mount_type: "database", data: { username: "u" } });
  });
});

describe("vault double: AppRole, tokens, wrapping", () => {
  let d: VaultDouble;
  let roleId: string;
  beforeAll(async () => {
    d = await startVaultDouble();
    d.mountKv("secret", 2);
    d.kvPut("secret", "app", { k: "v" });
    d.addPolicy("app", `path "secret/data/app" { capabilities = ["read"] }`);
    roleId = d.addAppRole({ roleName: "web", policies: ["app"], tokenTtl: 3600, tokenMaxTtl: 7200 }).roleId;
  });
  afterAll(() => d.close());

  it("logs in, looks up, renews and expires", async () => {
    const { secretId } = d.generateSecretId("web") as { secretId: string };
    const v = client(d, "hvs.stale-token-is-ignored");
    const login = (await v.approleLogin({ role_id: ` ${roleId} `, secret_id: secretId })) as Record<string, unknown>;
    expect(Object.keys(login)).toEqual(ENVELOPE_KEYS);
    expect(login).toMatchObject({ data: null, mount_type: "", lease_duration: 0, renewable: false });
    const auth = login["auth"] as Record<string, unknown>;
    expect(Object.keys(auth)).toEqual([
      "client_token", "accessor", "policies", "token_policies", "metadata", "lease_duration", "renewable",
      "entity_id", "token_type", "orphan", "mfa_requirement", "num_uses",
    ]);
    expect(auth).toMatchObject({
      policies: ["app", "default"],
      token_policies: ["app", "default"],
      metadata: { role_name: "web" },
      lease_duration: 3600,
      renewable: true,
      token_type: "service",
      orphan: true,
      mfa_requirement: null,
      num_uses: 0,
    });
    expect(auth["client_token"]).toMatch(/^hvs\./);
    expect(v.token).toBe(auth["client_token"]);

    d.advanceTime(600);
    const look = (await v.tokenLookupSelf()) as { data: Record<string, unknown>; mount_type: string };
    expect(look.mount_type).toBe("token");
    expect(look.data).toMatchObject({ ttl: 3000, creation_ttl: 3600, display_name: "approle", path: "auth/approle/login", explicit_max_ttl: 0, orphan: true, type: "service", meta: { role_name: "web" } });
    expect(look.data["expire_time"]).toMatch(RFC3339NANO);

    const renewed = (await v.tokenRenewSelf({ increment: "30m" })) as { auth: { lease_duration: number }; warnings: unknown; mount_type: string };
    expect(renewed.auth.lease_duration).toBe(1800);
    expect(renewed.warnings).toBeNull();
    expect(renewed.mount_type).toBe("token");
    const capped = (await v.tokenRenewSelf({ increment: 7200 })) as { auth: { lease_duration: number }; warnings: string[] };
    expect(capped.auth.lease_duration).toBe(6600);
    expect(capped.warnings).toHaveLength(1);
    expect(d.tokenInfo(v.token)?.ttl).toBe(6600);

    expect(((await v.read("secret/data/app")) as { data: { data: unknown } }).data.data).toEqual({ k: "v" });
    d.advanceTime(6600);
    const expired = await rejected(v.read("secret/data/app"));
    expect(expired.message).toBe(PD2);
    expect(d.tokenInfo(v.token)).toBeUndefined();
  });

  it("returns the exact login errors", async () => {
    const v = client(d);
    expect((await rejected(v.approleLogin({ role_id: "  " }))).response).toEqual({ statusCode: 400, body: { errors: ["missing role_id"] } });
    expect((await rejected(v.approleLogin({ role_id: "nope", secret_id: "x" }))).message).toBe("invalid role or secret ID");
    expect((await rejected(v.approleLogin({ role_id: roleId }))).message).toBe("missing secret_id");
    expect((await rejected(v.approleLogin({ role_id: roleId, secret_id: "wrong" }))).message).toBe("invalid role or secret ID");
  });

  it("enforces secret_id num_uses and TTL; batch tokens", async () => {
    const rid = d.addAppRole({ roleName: "limited", policies: [], secretIdNumUses: 1, secretIdTtl: 60 }).roleId;
    const s1 = (d.generateSecretId("limited") as { secretId: string }).secretId;
    await client(d).approleLogin({ role_id: rid, secret_id: s1 });
    expect((await rejected(client(d).approleLogin({ role_id: rid, secret_id: s1 }))).message).toBe("invalid role or secret ID");
    const s2 = (d.generateSecretId("limited") as { secretId: string }).secretId;
    d.advanceTime(61);
    expect((await rejected(client(d).approleLogin({ role_id: rid, secret_id: s2 }))).message).toBe("invalid role or secret ID");

    const bid = d.addAppRole({ roleName: "batch", policies: [], tokenType: "batch" }).roleId;
    const bs = (d.generateSecretId("batch") as { secretId: string }).secretId;
    const b = (await client(d).approleLogin({ role_id: bid, secret_id: bs })) as { auth: Record<string, unknown> };
    expect(b.auth).toMatchObject({ accessor: "", renewable: false, token_type: "batch" });
    expect(b.auth["client_token"]).toMatch(/^hvb\./);
    const vb = client(d, b.auth["client_token"] as string);
    expect((await rejected(vb.tokenRenewSelf())).response).toEqual({ statusCode: 400, body: { errors: ["lease is not renewable"] } });
  });

  it("wraps a secret-id, looks it up, unwraps once", async () => {
    const root = client(d, d.rootToken);
    const roleIdResp = (await root.getApproleRoleId({ role_name: "web" })) as { data: { role_id: string }; mount_type: string };
    expect(roleIdResp).toMatchObject({ data: { role_id: roleId }, mount_type: "approle" });

    const badTtl = await raw(d, "POST", "/v1/auth/approle/role/web/secret-id", { token: d.rootToken, headers: { "X-Vault-Wrap-TTL": "-5" } });
    expect(badTtl).toMatchObject({ status: 400, text: '{"errors":["error parsing X-Vault-Wrap-TTL header: requested wrap ttl cannot be negative"]}\n' });

    const wrapped = (await root.getApproleRoleSecret({ role_name: "web", requestOptions: { headers: { "X-Vault-Wrap-TTL": "60s" } } })) as Record<string, unknown>;
    expect(wrapped).toMatchObject({ request_id: "", data: null, auth: null, mount_type: "" });
    const info = wrapped["wrap_info"] as Record<string, unknown>;
    expect(Object.keys(info)).toEqual(["token", "accessor", "ttl", "creation_time", "creation_path", "wrapped_accessor"]);
    expect(info).toMatchObject({ ttl: 60, creation_path: "auth/approle/role/web/secret-id" });
    const wtoken = info["token"] as string;

    const anon = client(d);
    const lookup = (await anon.write("sys/wrapping/lookup", { token: wtoken })) as { data: Record<string, unknown> };
    expect(lookup.data).toMatchObject({ creation_path: "auth/approle/role/web/secret-id", creation_ttl: 60 });

    const un = (await anon.unwrap({ requestOptions: { headers: { "X-Vault-Token": wtoken } } })) as Record<string, unknown>;
    expect(un["request_id"]).toMatch(UUID);
    expect(un["mount_type"]).toBe("approle");
    const sid = un["data"] as Record<string, unknown>;
    expect(Object.keys(sid)).toEqual(["secret_id", "secret_id_accessor", "secret_id_num_uses", "secret_id_ttl"]);
    expect(sid["secret_id_accessor"]).toBe(info["wrapped_accessor"]);
    const again = await rejected(anon.unwrap({ requestOptions: { headers: { "X-Vault-Token": wtoken } } }));
    expect(again.response).toEqual({ statusCode: 400, body: { errors: ["wrapping token is not valid or does not exist"] } });
    expect((await rejected(anon.write("sys/wrapping/lookup", { token: wtoken }))).response.statusCode).toBe(400);

    // form B (normal token in header, wrapping token in body) and expiry
    const w2 = d.generateSecretId("web", { wrapTtl: 30 }) as { wrappingToken: string };
    const w3 = d.generateSecretId("web", { wrapTtl: 30 }) as { wrappingToken: string };
    const user = client(d, d.createToken({ policies: [] }));
    const formB = (await user.unwrap({ token: w2.wrappingToken })) as { data: { secret_id: string } };
    await client(d).approleLogin({ role_id: roleId, secret_id: formB.data.secret_id });
    const w4 = d.generateSecretId("web", { wrapTtl: 30 }) as { wrappingToken: string };
    const both = await raw(d, "POST", "/v1/sys/wrapping/unwrap", { token: w4.wrappingToken, body: JSON.stringify({ token: w4.wrappingToken }) });
    expect(both).toMatchObject({ status: 400, text: '{"errors":["wrapping token is not valid or does not exist"]}\n' });
    d.advanceTime(31);
    expect((await rejected(user.unwrap({ token: w3.wrappingToken }))).message).toBe("wrapping token is not valid or does not exist");
  });

  it("revoke-self answers 204 and the token becomes invalid", async () => {
    const t = d.createToken({ policies: ["app"], ttl: 600 });
    const r = await raw(d, "POST", "/v1/auth/token/revoke-self", { token: t });
    expect(r.status).toBe(204);
    expect(r.headers.get("content-type")).toBe("application/json");
    expect((await raw(d, "GET", "/v1/auth/token/lookup-self", { token: t })).text).toBe(`{"errors":[${JSON.stringify(PD2)}]}\n`);
  });
});

describe("vault double: health, seal, standby", () => {
  let d: VaultDouble;
  beforeAll(async () => {
    d = await startVaultDouble();
  });
  afterAll(() => d.close());

  it("reports active, standby, sealed and uninitialized with the right codes and bodies", async () => {
    const v = client(d);
    const active = (await v.health()) as Record<string, unknown>;
    expect(Object.keys(active)).toEqual([
      "initialized", "sealed", "standby", "performance_standby", "replication_performance_mode", "replication_dr_mode",
      "server_time_utc", "version", "enterprise", "cluster_name", "cluster_id", "echo_duration_ms", "clock_skew_ms",
      "replication_primary_canary_age_ms",
    ]);
    expect(active).toMatchObject({ initialized: true, sealed: false, standby: false, replication_dr_mode: "disabled" });

    d.setStandby(true);
    const sb = await raw(d, "GET", "/v1/sys/health");
    expect(sb.status).toBe(429);
    expect(JSON.parse(sb.text)).toMatchObject({ standby: true, cluster_name: expect.any(String) as string });
    expect((await raw(d, "GET", "/v1/sys/health?standbyok=true")).status).toBe(200);
    expect((await raw(d, "GET", "/v1/sys/health?standbycode=299")).status).toBe(299);
    expect(await raw(d, "GET", "/v1/auth/token/lookup-self", { token: d.rootToken })).toMatchObject({ status: 503, text: '{"errors":["node is not active"]}\n' });
    d.setStandby(false);

    d.seal();
    const sealed = await raw(d, "GET", "/v1/sys/health");
    expect(sealed.status).toBe(503);
    const sb2 = JSON.parse(sealed.text) as Record<string, unknown>;
    expect(sb2).toMatchObject({ sealed: true, standby: true, replication_performance_mode: "unknown", replication_dr_mode: "unknown" });
    expect(sb2["cluster_name"]).toBeUndefined();
    expect(sb2["cluster_id"]).toBeUndefined();
    expect(((await v.health()) as { sealed: boolean }).sealed).toBe(true); // node-vault resolves health for any status
    expect((await raw(d, "GET", "/v1/sys/health?sealedcode=299")).status).toBe(299);
    expect(await raw(d, "GET", "/v1/secret/data/x", { token: d.rootToken })).toMatchObject({ status: 503, text: '{"errors":["Vault is sealed"]}\n' });
    d.unseal();

    d.setInitialized(false);
    const un = await raw(d, "GET", "/v1/sys/health");
    expect(un.status).toBe(501);
    expect(JSON.parse(un.text)).toMatchObject({ initialized: false, sealed: true });
    expect((await raw(d, "GET", "/v1/sys/health?uninitcode=200")).status).toBe(200);
    d.setInitialized(true);

    expect((await raw(d, "GET", "/v1/sys/health?activecode=204")).status).toBe(204);
    expect(await raw(d, "GET", "/v1/sys/health?activecode=abc")).toMatchObject({ status: 400, text: '{"errors":[]}\n' });
    expect(await raw(d, "GET", "/v1/sys/health?standbyok=maybe")).toMatchObject({ status: 400, text: '{"errors":[]}\n' });
    const head = await raw(d, "HEAD", "/v1/sys/health");
    expect(head).toMatchObject({ status: 200, text: "" });
    expect(await raw(d, "POST", "/v1/sys/health")).toMatchObject({ status: 405, text: '{"errors":[]}\n' });
  });
});

describe("vault double: faults, latency, request log, TLS, serve", () => {
  let d: VaultDouble;
  beforeAll(async () => {
    d = await startVaultDouble();
    d.mountKv("secret", 2);
    d.kvPut("secret", "app", { k: "v" });
  });
  afterAll(() => d.close());

  it("injects status faults with default Vault bodies and headers, counting down", async () => {
    const remove = d.addFault({ path: "secret/data/app", status: 429, headers: { "Retry-After": "1" }, times: 1 });
    const r = await raw(d, "GET", "/v1/secret/data/app", { token: d.rootToken });
    expect(r.status).toBe(429);
    expect(r.headers.get("retry-after")).toBe("1");
    expect(r.text).toBe('{"errors":["request path \\"secret/data/app\\": rate limit quota exceeded"]}\n');
    expect((await raw(d, "GET", "/v1/secret/data/app", { token: d.rootToken })).status).toBe(200);
    remove();
    d.addFault({ path: /^secret\//, method: "GET", status: 500, times: 1 });
    const e = await rejected(client(d, d.rootToken).read("secret/data/app"));
    expect(e.message).toBe("1 error occurred:\n\t* internal error\n\n");
    d.addFault({ status: 503, times: 1 });
    expect(await raw(d, "GET", "/v1/secret/data/app", { token: d.rootToken })).toMatchObject({ status: 503, text: '{"errors":["Vault is sealed"]}\n' });
    d.addFault({ status: 200, body: '{"custom":true}', contentType: "application/json", times: 1 });
    expect(await raw(d, "GET", "/v1/anything")).toMatchObject({ status: 200, text: '{"custom":true}' });
  });

  it("drops, hangs, sends malformed JSON, HTML and redirects", async () => {
    d.addFault({ drop: true, times: 1 });
    await expect(fetch(`${d.url}/v1/secret/data/app`)).rejects.toThrow();

    d.addFault({ hang: true, times: 1 });
    const v = vault({ endpoint: d.url, noCustomHTTPVerbs: true, token: d.rootToken, requestOptions: { timeout: 150 } });
    await expect(v.read("secret/data/app")).rejects.toThrow(/timeout/i);

    // holdUntil: the answer waits for the gate, then is the usual one.
    let open = (): void => undefined;
    d.addFault({ path: "secret/data/app", holdUntil: new Promise<void>((r) => (open = r)), times: 1 });
    let answered = false;
    const before = d.countRequests({ path: "secret/data/app" });
    const held = raw(d, "GET", "/v1/secret/data/app", { token: d.rootToken }).then((r) => ((answered = true), r));
    while (d.countRequests({ path: "secret/data/app" }) === before) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 20));
    expect(answered).toBe(false);
    open();
    expect((await held).status).toBe(200);

    d.addFault({ malformed: true, times: 1 });
    const m = await raw(d, "GET", "/v1/secret/data/app");
    expect(m.status).toBe(200);
    expect(m.headers.get("content-type")).toBe("application/json");
    expect(() => JSON.parse(m.text) as unknown).toThrow();

    d.addFault({ html: true, times: 1 });
    const h = await raw(d, "GET", "/v1/secret/data/app");
    expect(h.status).toBe(502);
    expect(h.headers.get("content-type")).toBe("text/html");
    expect(h.text).toContain("<html>");

    const target = await startVaultDouble();
    target.mountKv("secret", 2);
    target.kvPut("secret", "app", { where: "target" });
    try {
      d.addFault({ redirectTo: target.url, times: 1 });
      const loc = await fetch(`${d.url}/v1/secret/data/app?version=1`, { redirect: "manual" });
      expect(loc.status).toBe(307);
      expect(loc.headers.get("location")).toBe(`${target.url}/v1/secret/data/app?version=1`);
      d.addFault({ redirectTo: target.url, times: 1 });
      const tv = client(target, target.rootToken);
      const followed = (await client(d, target.rootToken).read("secret/data/app")) as { data: { data: unknown } };
      expect(followed.data.data).toEqual({ where: "target" });
      expect(tv).toBeDefined();
    } finally {
      await target.close();
    }
  });

  it("adds global and per-fault latency", async () => {
    const before = d.latencyWaits().length;
    d.setLatency(60);
    await raw(d, "GET", "/v1/sys/health");
    expect(d.latencyWaits().slice(before)).toEqual([60]);
    d.setLatency(0);
    d.addFault({ latencyMs: 45, times: 1 });
    const r = await raw(d, "GET", "/v1/sys/health");
    expect(r.status).toBe(200);
    await raw(d, "GET", "/v1/sys/health"); // the fault was used up, and there is no global latency
    expect(d.latencyWaits().slice(before)).toEqual([60, 45]);
  });

  it("logs one entry per request with the accessor and no secrets", async () => {
    d.clearRequests();
    const t = d.createToken({ policies: [] });
    const accessor = (JSON.parse((await raw(d, "GET", "/v1/auth/token/lookup-self", { token: t })).text) as { data: { accessor: string } }).data.accessor;
    await raw(d, "GET", "/v1/secret/metadata/?list=true", { token: d.rootToken });
    await raw(d, "GET", "/v1/secret/data/app");
    await raw(d, "POST", "/v1/auth/approle/role/x/secret-id", { token: d.rootToken, headers: { "X-Vault-Wrap-TTL": "60" } });
    expect(d.requests).toHaveLength(4);
    expect(d.requests[0]).toMatchObject({ method: "GET", path: "auth/token/lookup-self", status: 200, tokenAccessor: accessor, wrapped: false });
    expect(d.requests[1]).toMatchObject({ path: "secret/metadata/", query: { list: "true" }, status: 200 });
    expect(d.requests[2]).toMatchObject({ status: 403, tokenAccessor: null });
    expect(d.countRequests({ method: "GET", path: /^secret\// })).toBe(2);
    const dump = JSON.stringify(d.requests);
    expect(dump).not.toContain(t);
    expect(dump).not.toContain(d.rootToken);
  });

  it("records wrapped responses in the log", async () => {
    d.addAppRole({ roleName: "r", policies: [] });
    d.clearRequests();
    await raw(d, "POST", "/v1/auth/approle/role/r/secret-id", { token: d.rootToken, headers: { "X-Vault-Wrap-TTL": "5m" } });
    expect(d.requests[0]).toMatchObject({ status: 200, wrapped: true });
  });

  it("rejects bodies over 32 MiB with 413", async () => {
    const big = "x".repeat(32 * 1024 * 1024 + 10);
    const r = await raw(d, "POST", "/v1/secret/data/app", { token: d.rootToken, body: big });
    expect(r.status).toBe(413);
  });

  it("serves HTTPS with a given certificate", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vd-tls-"));
    try {
      execFileSync("openssl", [
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
      ], { stdio: "ignore" });
      const cert = readFileSync(join(dir, "cert.pem"), "utf8");
      const tls = await startVaultDouble({ tls: { cert, key: readFileSync(join(dir, "key.pem"), "utf8") } });
      try {
        expect(tls.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
        const v = vault({ endpoint: tls.url, noCustomHTTPVerbs: true, requestOptions: { ca: cert } });
        expect(((await v.health()) as { initialized: boolean }).initialized).toBe(true);
      } finally {
        await tls.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("runs standalone from serve.ts with a seed file", async () => {
    // Transpile the double sources into a temp dir (typescript is a dev dependency).
    const dir = mkdtempSync(join(tmpdir(), "vd-serve-"));
    try {
      // Every source file of the double (the facade imports one module per seam), tests aside.
      const sources = readdirSync(import.meta.dirname, { recursive: true, encoding: "utf8" }).filter(
        (f) => f.endsWith(".ts") && !f.endsWith(".test.ts") && f !== "testing.ts",
      );
      for (const f of sources) {
        const src = readFileSync(join(import.meta.dirname, f), "utf8");
        const out = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 } });
        mkdirSync(dirname(join(dir, f)), { recursive: true });
        writeFileSync(join(dir, f.replace(/\.ts$/, ".js")), out.outputText);
      }
      writeFileSync(join(dir, "package.json"), '{"type":"module"}');
      const seedPath = join(dir, "seed.json");
      writeFileSync(
        seedPath,
        JSON.stringify({
          mounts: [{ path: "secret", version: 2 }],
          kv: [{ mount: "secret", path: "a", data: { x: "y" } }],
          pki: [{ path: "pki", roles: { web: { allowAnyName: true, keyType: "ec" } } }],
          databases: [{ path: "database", roles: { app: { defaultTtl: 60, maxTtl: 120 } } }],
          approles: [{ roleName: "app", policies: [] }],
        }),
      );
      const child = spawn(process.execPath, [join(dir, "serve.js"), "--port", "0", "--seed", seedPath], { stdio: ["ignore", "pipe", "inherit"] });
      try {
        const line = await new Promise<string>((resolve, reject) => {
          let buf = "";
          child.stdout.on("data", (c: Buffer) => {
            buf += c.toString();
            if (buf.includes("\n")) resolve(buf.split("\n")[0] as string);
          });
          child.on("exit", (code) => reject(new Error(`exited ${code}`)));
        });
        const info = JSON.parse(line) as Record<string, string>;
        expect(Object.keys(info)).toEqual(["url", "rootToken", "roleIds", "secretIds", "pkiRoots"]);
        const ids = (k: string) => (info[k] as unknown as Record<string, string>)["approle/app"];
        const login = await fetch(`${info["url"]}/v1/auth/approle/login`, { method: "POST", body: JSON.stringify({ role_id: ids("roleIds"), secret_id: ids("secretIds") }) });
        expect(login.status).toBe(200);
        const headers = { "X-Vault-Token": info["rootToken"] as string };
        const r = await fetch(`${info["url"]}/v1/secret/data/a`, { headers });
        expect(((await r.json()) as { data: { data: unknown } }).data.data).toEqual({ x: "y" });
        const root = (info["pkiRoots"] as unknown as Record<string, string>)["pki"] as string;
        const issued = await fetch(`${info["url"]}/v1/pki/issue/web`, { method: "POST", headers, body: '{"common_name":"x.test"}' });
        const chain = ((await issued.json()) as { data: { ca_chain: string[] } }).data.ca_chain;
        expect(chain[1]).toBe(root.trim());
        const creds = await fetch(`${info["url"]}/v1/database/creds/app`, { headers });
        expect(((await creds.json()) as { lease_duration: number }).lease_duration).toBe(60);
        const exited = new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
        child.kill("SIGTERM");
        expect(await exited).toBe(0);
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("ACL matching", () => {
  it("follows Vault's exact > prefix > segment-wildcard priority and deny", () => {
    const acl = new Acl([
      parsePolicy("a", `
        path "secret/data/*" { capabilities = ["read"] }
        path "secret/data/app/db" { capabilities = ["update"] }
        path "secret/data/+/team" { capabilities = ["list"] }
        path "secret/data/x*" { capabilities = ["read", "create"] }
        /* block comment */
        path "kv/+/deny/*" { capabilities = ["deny"] }
        path "k*" { capabilities = ["read"] } # shorter glob: the + rule wins for kv/a/deny/...
      `),
      parsePolicy("b", `path "secret/data/app/db" { capabilities = ["read"] }`),
    ]);
    expect([...acl.capabilities("secret/data/app/db")].sort()).toEqual(["read", "update"]);
    expect([...acl.capabilities("secret/data/app/other")]).toEqual(["read"]);
    expect([...acl.capabilities("secret/data/xyz")].sort()).toEqual(["create", "read"]);
    expect([...acl.capabilities("secret/data/foo/team")]).toEqual(["list"]);
    expect(acl.allows("kv/a/deny/b", "read")).toBe(false);
    expect(acl.allows("kv/a/ok/b", "read")).toBe(true);
    expect(acl.allows("other/x", "read")).toBe(false);
    expect(acl.hasAnyAccessUnder("secret/")).toBe(true);
    expect(acl.hasAnyAccessUnder("nope/")).toBe(false);
  });

  it("parses durations like Go", () => {
    expect(parseDurationSecond("1h30m")).toBe(5400);
    expect(parseDurationSecond("300")).toBe(300);
    expect(parseDurationSecond(60)).toBe(60);
    expect(() => parseDurationSecond("abc")).toThrow('time: invalid duration "abc"');
    expect(goDuration(3600)).toBe("1h0m0s");
    expect(goDuration(90)).toBe("1m30s");
  });
});

describe("KV keys that are Object.prototype names", () => {
  it("returns a secret whose keys are __proto__ and constructor as stored (a Go map carries any key)", async () => {
    const d = await startVaultDouble();
    try {
      d.mountKv("secret", 2);
      d.kvPut("secret", "p", JSON.parse('{"__proto__":"p","constructor":"c"}') as Record<string, unknown>);
      const res = await fetch(`${d.url}/v1/secret/data/p`, { headers: { "X-Vault-Token": d.rootToken } });
      const text = await res.text();
      expect(text).toContain('"data":{"__proto__":"p","constructor":"c"}');
    } finally {
      await d.close();
    }
  });
});
