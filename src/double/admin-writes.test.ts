// The writes the operations guide runs (vault policy write, auth enable, secrets enable, role
// write, role-id read, wrapped secret-id, kv put), as raw HTTP, with their refusals.
import { describe, it, expect, beforeEach, afterEach } from "vitest";
import { startVaultDouble } from "./vault-double.js";
import type { VaultDouble } from "./vault-double.js";

async function raw(d: VaultDouble, method: string, path: string, init: { token?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...init.headers };
  if (init.token) headers["X-Vault-Token"] = init.token;
  const body = init.body === undefined ? undefined : JSON.stringify(init.body);
  const r = await fetch(`${d.url}/v1/${path}`, { method, headers, body });
  const text = await r.text();
  return { status: r.status, text, json: text ? (JSON.parse(text) as unknown) : undefined };
}

/** The value at a key path of a parsed JSON body. */
function at(v: unknown, ...keys: string[]): unknown {
  for (const k of keys) v = v !== null && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

describe("vault double: admin writes of the operations guide", () => {
  let d: VaultDouble;
  let limited: string;
  beforeEach(async () => {
    d = await startVaultDouble();
    d.addPolicy("reader", `path "sys/mounts" { capabilities = ["read"] }\npath "sys/policies/acl/*" { capabilities = ["read"] }`);
    d.addPolicy("mounter", `path "sys/mounts/*" { capabilities = ["update"] }\npath "sys/auth/*" { capabilities = ["update"] }\npath "auth/approle/role/*" { capabilities = ["create"] }`);
    limited = d.createToken({ policies: ["reader"], ttl: 3600 });
  });
  afterEach(() => d.close());

  it("enables kv v2, pki and database engines (204), lists and reads them, refuses a second mount and unknown types", async () => {
    const root = d.rootToken;
    expect((await raw(d, "POST", "sys/mounts/secret", { token: root, body: { type: "kv", options: { version: "2" } } })).status).toBe(204);
    expect((await raw(d, "POST", "sys/mounts/pki", { token: root, body: { type: "pki" } })).status).toBe(204);
    expect((await raw(d, "POST", "sys/mounts/database", { token: root, body: { type: "database" } })).status).toBe(204);
    const dup = await raw(d, "POST", "sys/mounts/secret", { token: root, body: { type: "kv" } });
    expect(dup).toMatchObject({ status: 400, json: { errors: ["path is already in use at secret/"] } });
    const nested = await raw(d, "POST", "sys/mounts/secret/inner", { token: root, body: { type: "kv" } });
    expect(nested).toMatchObject({ status: 400, json: { errors: ["path is already in use at secret/"] } });
    expect(await raw(d, "POST", "sys/mounts/x", { token: root, body: { type: "nope" } })).toMatchObject({ status: 400, json: { errors: ["plugin not found in the catalog: nope"] } });
    expect(await raw(d, "POST", "sys/mounts/x", { token: root, body: {} })).toMatchObject({ status: 400, json: { errors: ["backend type must be specified"] } });
    expect((await raw(d, "POST", "sys/mounts/sys", { token: root, body: { type: "kv" } })).status).toBe(400);

    const list = await raw(d, "GET", "sys/mounts", { token: limited });
    expect(list.status).toBe(200);
    expect(at(list.json, "data", "secret/")).toMatchObject({ type: "kv", options: { version: "2" } });
    expect(at(list.json, "data", "pki/")).toMatchObject({ type: "pki" });
    expect(at(list.json, "data", "auth/token/")).toBeUndefined();
    expect(at((await raw(d, "GET", "sys/mounts/secret", { token: root })).json, "data")).toMatchObject({ type: "kv" });

    // the engine works at once: a KV v2 write and read
    expect((await raw(d, "POST", "secret/data/homelab/app", { token: root, body: { data: { GREETING: "hello" } } })).status).toBe(200);
    expect(at((await raw(d, "GET", "secret/data/homelab/app", { token: root })).json, "data", "data")).toEqual({ GREETING: "hello" });

    expect((await raw(d, "DELETE", "sys/mounts/secret", { token: root })).status).toBe(204);
    expect(at((await raw(d, "GET", "sys/mounts", { token: root })).json, "data", "secret/")).toBeUndefined();
  });

  it("refuses mounts, auth enables and role writes without the capability (403), allows them with it", async () => {
    for (const [p, b] of [["sys/mounts/secret", { type: "kv" }], ["sys/auth/approle", { type: "approle" }]] as const) {
      expect((await raw(d, "POST", p, { token: limited, body: b })).status).toBe(403);
    }
    expect((await raw(d, "POST", "sys/mounts/secret", { body: { type: "kv" } })).status).toBe(403);
    expect((await raw(d, "DELETE", "sys/mounts/cubbyhole", { token: limited })).status).toBe(403);
    expect((await raw(d, "GET", "sys/auth", { token: limited })).status).toBe(403);
    expect(at((await raw(d, "GET", "sys/mounts", { token: limited })).json, "data", "secret/")).toBeUndefined();

    const mounter = d.createToken({ policies: ["mounter"], ttl: 3600 });
    expect((await raw(d, "POST", "sys/mounts/secret", { token: mounter, body: { type: "kv-v2" } })).status).toBe(204);
    expect((await raw(d, "POST", "sys/auth/approle", { token: mounter, body: { type: "approle" } })).status).toBe(204);
    // create is granted, update is not: the first write creates, the second is an update
    expect((await raw(d, "POST", "auth/approle/role/app", { token: mounter, body: { token_policies: "x" } })).status).toBe(204);
    expect((await raw(d, "POST", "auth/approle/role/app", { token: mounter, body: { token_ttl: "1h" } })).status).toBe(403);
    expect((await raw(d, "GET", "auth/approle/role/app/role-id", { token: mounter })).status).toBe(403);
  });

  it("enables approle, refuses a second enable and unknown auth types, lists auth methods", async () => {
    const root = d.rootToken;
    expect((await raw(d, "POST", "sys/auth/approle", { token: root, body: { type: "approle" } })).status).toBe(204);
    expect(await raw(d, "POST", "sys/auth/approle", { token: root, body: { type: "approle" } })).toMatchObject({
      status: 400,
      json: { errors: ["path is already in use at auth/approle/"] },
    });
    expect((await raw(d, "POST", "sys/auth/ldap", { token: root, body: { type: "ldap" } })).status).toBe(400);
    const list = await raw(d, "GET", "sys/auth", { token: root });
    expect(Object.keys(at(list.json, "data") as object).sort()).toEqual(["approle/", "token/"]);
    expect((await raw(d, "DELETE", "sys/auth/approle", { token: root })).status).toBe(204);
    expect((await raw(d, "POST", "auth/approle/role/app", { token: root, body: {} })).status).toBe(404);
  });

  it("writes, reads and deletes an AppRole role; role-id, wrapped secret-id and login work with it", async () => {
    const root = d.rootToken;
    await raw(d, "POST", "sys/auth/approle", { token: root, body: { type: "approle" } });
    expect((await raw(d, "PUT", "sys/policies/acl/homelab", { token: root, body: { policy: 'path "secret/data/*" { capabilities = ["read"] }' } })).status).toBe(204);
    expect(at((await raw(d, "GET", "sys/policies/acl/homelab", { token: limited })).json, "data", "name")).toBe("homelab");
    const w = await raw(d, "POST", "auth/approle/role/homelab", {
      token: root,
      body: { token_policies: "homelab", token_ttl: "1h", token_max_ttl: "24h", secret_id_ttl: "720h", secret_id_num_uses: "0" },
    });
    expect(w.status).toBe(204);
    const r = await raw(d, "GET", "auth/approle/role/homelab", { token: root });
    expect(at(r.json, "data")).toMatchObject({ token_policies: ["homelab"], policies: ["homelab"], token_ttl: 3600, token_max_ttl: 86400, secret_id_ttl: 2592000, secret_id_num_uses: 0 });
    expect(await raw(d, "POST", "auth/approle/role/homelab", { token: root, body: { token_ttl: "48h" } })).toMatchObject({
      status: 400,
      json: { errors: ["token_ttl should not be greater than token_max_ttl"] },
    });
    expect((await raw(d, "POST", "auth/approle/role/homelab", { token: root, body: { token_ttl: "soon" } })).status).toBe(400);
    expect((await raw(d, "POST", "auth/approle/role/homelab", { token: root, body: { secret_id_num_uses: -1 } })).status).toBe(400);
    expect((await raw(d, "POST", "auth/approle/role/-bad-", { token: root, body: {} })).status).toBe(404);
    expect(await raw(d, "PUT", "sys/policies/acl/empty", { token: root, body: { policy: "" } })).toMatchObject({
      status: 400,
      json: { errors: ["'policy' parameter not supplied or empty"] },
    });

    const roleId = at((await raw(d, "GET", "auth/approle/role/homelab/role-id", { token: root })).json, "data", "role_id") as string;
    const wrapped = await raw(d, "POST", "auth/approle/role/homelab/secret-id", { token: root, headers: { "X-Vault-Wrap-TTL": "24h" } });
    expect(wrapped.status).toBe(200);
    expect(at(wrapped.json, "data")).toBeNull();
    const wt = at(wrapped.json, "wrap_info", "token") as string;
    expect(at(wrapped.json, "wrap_info")).toMatchObject({ ttl: 86400, creation_path: "auth/approle/role/homelab/secret-id" });
    const unwrapped = await raw(d, "POST", "sys/wrapping/unwrap", { token: wt });
    const secretId = at(unwrapped.json, "data", "secret_id") as string;
    const login = await raw(d, "POST", "auth/approle/login", { body: { role_id: roleId, secret_id: secretId } });
    expect(login.status).toBe(200);
    expect(at(login.json, "auth")).toMatchObject({ token_policies: ["default", "homelab"], lease_duration: 3600 });

    expect((await raw(d, "DELETE", "auth/approle/role/homelab", { token: root })).status).toBe(204);
    expect((await raw(d, "GET", "auth/approle/role/homelab", { token: root })).status).toBe(404);
    expect((await raw(d, "DELETE", "sys/policies/acl/homelab", { token: root })).status).toBe(204);
    expect((await raw(d, "GET", "sys/policies/acl/homelab", { token: root })).status).toBe(404);
  });
});
