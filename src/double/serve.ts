/**
 * Standalone entry for the Vault test double.
 *
 *   node dist/double/serve.js [--port 0] [--host 127.0.0.1] [--seed seed.json]
 *                             [--tls-cert cert.pem --tls-key key.pem] [--root-token hvs.x]
 *
 * Prints exactly one JSON line on stdout once listening:
 *   {"url":"http://127.0.0.1:38123","rootToken":"hvs.…"}
 * plus `roleIds` (role name → role_id, keyed "<mount>/<role>") and `secretIds` (one fresh
 * secret_id per role, same keys) and `tokens` when the seed
 * defines AppRoles or tokens, and `pkiRoots` (mount → root CA PEM) when it defines PKI mounts. Exits 0 on SIGTERM/SIGINT after closing the server.
 *
 * Seed file (every key optional):
 * {
 *   "rootToken": "hvs.fixed",
 *   "mounts":   [{ "path": "secret", "version": 2 }, { "path": "kv1", "version": 1 }],
 *   "kv":       [{ "mount": "secret", "path": "app", "data": { "k": "v" } }],   // repeated = new versions
 *   "policies": { "app-read": "path \"secret/data/app\" { capabilities = [\"read\"] }" },
 *   "approles": [{ "roleName": "app", "roleId": "…", "policies": ["app-read"], "tokenTtl": 3600 }],
 *   "tokens":   [{ "policies": ["app-read"], "ttl": 3600, "id": "hvs.fixed-app" }],
 *   "generic":  [{ "path": "database/creds/app", "data": { "username": "u" }, "leaseId": "…", "leaseDuration": 3600, "renewable": true }],
 *   "pki":      [{ "path": "pki_int", "ttl": 86400, "roles": { "web": { "allowedDomains": ["home.arpa"], "allowSubdomains": true } } }],
 *   "databases": [{ "path": "database", "roles": { "app": { "defaultTtl": 3600, "maxTtl": 7200 } } }],
 *   "sealed": false, "standby": false, "initialized": true, "latencyMs": 0
 * }
 */
import { readFileSync } from "node:fs";
import { startVaultDouble } from "./vault-double.js";
import type { AppRoleOptions, CreateTokenOptions, DbRoleOptions, GenericOptions, PkiMountOptions, PkiRoleOptions, VaultDoubleOptions } from "./vault-double.js";

export interface Seed {
  rootToken?: string;
  mounts?: { path: string; version: 1 | 2 }[];
  kv?: { mount: string; path: string; data: Record<string, unknown> }[];
  policies?: Record<string, string>;
  approles?: AppRoleOptions[];
  tokens?: CreateTokenOptions[];
  generic?: ({ path: string; data: Record<string, unknown> } & GenericOptions)[];
  pki?: ({ path: string; roles?: Record<string, PkiRoleOptions> } & PkiMountOptions)[];
  databases?: { path: string; roles?: Record<string, DbRoleOptions> }[];
  sealed?: boolean;
  standby?: boolean;
  initialized?: boolean;
  latencyMs?: number;
}

function parseArgs(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}`);
    const eq = a.indexOf("=");
    if (eq > 0) out[a.slice(2, eq)] = a.slice(eq + 1);
    else {
      const v = argv[i + 1];
      if (v === undefined) throw new Error(`missing value for ${a}`);
      out[a.slice(2)] = v;
      i++;
    }
  }
  return out;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const seed: Seed = args["seed"] ? (JSON.parse(readFileSync(args["seed"], "utf8")) as Seed) : {};
  const opts: VaultDoubleOptions = {
    host: args["host"] ?? "127.0.0.1",
    port: args["port"] !== undefined ? Number(args["port"]) : 0,
    rootToken: args["root-token"] ?? seed.rootToken,
  };
  if (args["tls-cert"] || args["tls-key"]) {
    if (!args["tls-cert"] || !args["tls-key"]) throw new Error("--tls-cert and --tls-key go together");
    opts.tls = { cert: readFileSync(args["tls-cert"], "utf8"), key: readFileSync(args["tls-key"], "utf8") };
  }
  const double = await startVaultDouble(opts);

  for (const m of seed.mounts ?? []) double.mountKv(m.path, m.version);
  for (const [name, hcl] of Object.entries(seed.policies ?? {})) double.addPolicy(name, hcl);
  for (const e of seed.kv ?? []) double.kvPut(e.mount, e.path, e.data);
  const roleIds: Record<string, string> = {};
  const secretIds: Record<string, string> = {};
  for (const r of seed.approles ?? []) {
    const key = `${r.mount ?? "approle"}/${r.roleName}`;
    roleIds[key] = double.addAppRole(r).roleId;
    const sid = double.generateSecretId(r.roleName, { mount: r.mount });
    if ("secretId" in sid) secretIds[key] = sid.secretId;
  }
  const tokens = (seed.tokens ?? []).map((t) => double.createToken(t));
  for (const g of seed.generic ?? []) {
    const { path, data, ...rest } = g;
    double.setGeneric(path, data, rest);
  }
  const pkiRoots: Record<string, string> = {};
  for (const p of seed.pki ?? []) {
    const { path, roles, ...opts } = p;
    double.mountPki(path, opts);
    for (const [name, r] of Object.entries(roles ?? {})) double.addPkiRole(path, name, r);
    pkiRoots[path] = double.pkiCaChain(path).root;
  }
  for (const db of seed.databases ?? []) {
    double.mountDatabase(db.path);
    for (const [name, r] of Object.entries(db.roles ?? {})) double.addDbRole(db.path, name, r);
  }
  if (seed.initialized === false) double.setInitialized(false);
  if (seed.sealed) double.seal();
  if (seed.standby) double.setStandby(true);
  if (seed.latencyMs) double.setLatency(seed.latencyMs);

  const line: Record<string, unknown> = { url: double.url, rootToken: double.rootToken };
  if (seed.approles?.length) {
    line["roleIds"] = roleIds;
    line["secretIds"] = secretIds;
  }
  if (tokens.length) line["tokens"] = tokens;
  if (seed.pki?.length) line["pkiRoots"] = pkiRoots;
  process.stdout.write(`${JSON.stringify(line)}\n`);

  let closing = false;
  const stop = (): void => {
    if (closing) return;
    closing = true;
    double.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((e: unknown) => {
  process.stderr.write(`vault double: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(2);
});
