/**
 * Seeding helpers behind the VaultDouble methods tests, the demo and the benchmarks use to set the
 * double up (mounts, KV data, AppRoles, tokens, PKI roles, database roles) and to inspect it.
 */
import { randomUUID } from "node:crypto";
import { approleMount, newSecretId, secretIdEnv, secretIdLive } from "./auth/approle.js";
import { isDeleted, kv2Destroy, kv2SoftDelete, kv2Undelete, kv2Write } from "./engines/kv.js";
import { addMount, findMount } from "./model/mounts.js";
import { newToken } from "./model/tokens.js";
import type { AppRole, Mount, PkiState } from "./model/types.js";
import { createWrap } from "./model/wrapping.js";
import { createCaHierarchy, keySpec } from "./pki.js";
import type { State } from "./state.js";
import type { AppRoleOptions, CreateTokenOptions, DbRoleOptions, GenericOptions, PkiIssuedCert, PkiMountOptions, PkiRoleOptions } from "./types.js";
import { clone, normMount, trimSlashes } from "./util.js";

export function mountKv(s: State, path: string, version: 1 | 2): void {
  const p = normMount(path);
  addMount(s, p, "kv", version === 2 ? "kv2" : "kv1", "key/value secret storage", version === 2 ? { version: "2" } : null);
}

function kvMount(s: State, mount: string): Mount {
  const m = s.mounts.get(normMount(mount));
  if (!m || (m.kind !== "kv1" && m.kind !== "kv2")) throw new Error(`no KV mount at ${mount}`);
  return m;
}

export function kvPut(s: State, mount: string, path: string, data: Record<string, unknown>): number {
  const m = kvMount(s, mount);
  const key = trimSlashes(path);
  if (m.kind === "kv1") {
    m.kv1.set(key, clone(data));
    return 0;
  }
  return kv2Write(s, m, key, clone(data)).version;
}

export function kvSoftDelete(s: State, mount: string, path: string, versions?: number[]): void {
  const m = kvMount(s, mount);
  const key = trimSlashes(path);
  if (m.kind === "kv1") {
    m.kv1.delete(key);
    return;
  }
  const k = m.kv2.get(key);
  if (!k) return;
  kv2SoftDelete(s, k, versions ?? [k.current]);
}

export function kvUndelete(s: State, mount: string, path: string, versions: number[]): void {
  const k = kvMount(s, mount).kv2.get(trimSlashes(path));
  if (k) kv2Undelete(s, k, versions);
}

export function kvDestroy(s: State, mount: string, path: string, versions: number[]): void {
  const k = kvMount(s, mount).kv2.get(trimSlashes(path));
  if (k) kv2Destroy(s, k, versions);
}

export function kvCurrent(s: State, mount: string, path: string): { version: number; data: Record<string, unknown> | null } | undefined {
  const m = kvMount(s, mount);
  const key = trimSlashes(path);
  if (m.kind === "kv1") {
    const d = m.kv1.get(key);
    return d ? { version: 0, data: clone(d) } : undefined;
  }
  const k = m.kv2.get(key);
  if (!k) return undefined;
  const v = k.versions.get(k.current);
  const live = v && !v.destroyed && !isDeleted(s, v) && v.data ? clone(v.data) : null;
  return { version: k.current, data: live };
}

export function setGeneric(s: State, path: string, data: Record<string, unknown>, opts: GenericOptions = {}): void {
  const p = trimSlashes(path);
  if (!findMount(s, p)) {
    const first = p.split("/")[0] as string;
    addMount(s, `${first}/`, opts.mountType ?? first, "generic", "");
  }
  s.generic.set(p, { data: clone(data), opts });
}

export function createToken(s: State, opts: CreateTokenOptions): string {
  const explicit = opts.maxTtl ?? 0;
  return newToken(s, {
    id: opts.id,
    policies: opts.policies,
    ttl: opts.ttl ?? 0,
    maxTtl: explicit,
    explicitMaxTtl: explicit,
    path: "auth/token/create",
    displayName: opts.displayName ? `token-${opts.displayName}` : "token",
    orphan: false,
    renewable: opts.renewable ?? true,
    meta: opts.meta ?? null,
    type: opts.type,
    numUses: opts.numUses,
    parent: opts.parent === undefined ? s.rootToken : opts.parent,
    period: opts.period,
  }).id;
}

export function addAppRole(s: State, opts: AppRoleOptions): { roleId: string } {
  const m = approleMount(s, opts.mount, true);
  const role: AppRole = {
    roleName: opts.roleName,
    roleId: opts.roleId ?? randomUUID(),
    policies: [...opts.policies],
    tokenTtl: opts.tokenTtl ?? 0,
    tokenMaxTtl: opts.tokenMaxTtl ?? 0,
    tokenPeriod: opts.tokenPeriod ?? 0,
    tokenType: opts.tokenType ?? "service",
    secretIdTtl: opts.secretIdTtl ?? 0,
    secretIdNumUses: opts.secretIdNumUses ?? 0,
    entityId: randomUUID(),
    secretIds: new Map(),
  };
  m.roles.set(opts.roleName, role);
  return { roleId: role.roleId };
}

export function generateSecretId(
  s: State,
  roleName: string,
  opts: { mount?: string; wrapTtl?: number } = {},
): { secretId: string; accessor: string } | { wrappingToken: string; accessor: string } {
  const m = approleMount(s, opts.mount);
  const role = m.roles.get(roleName);
  if (!role) throw new Error(`no role ${roleName} on ${m.path}`);
  const e = newSecretId(s, role);
  if (opts.wrapTtl && opts.wrapTtl > 0) {
    const w = createWrap(s, secretIdEnv(e), opts.wrapTtl, `${m.path}role/${roleName}/secret-id`);
    return { wrappingToken: w.token, accessor: e.accessor };
  }
  return { secretId: e.secretId, accessor: e.accessor };
}

/** Live (unexpired, not used up) secret-ids of a role. */
export function secretIdCount(s: State, roleName: string, mount?: string): number {
  const role = approleMount(s, mount).roles.get(roleName);
  if (!role) throw new Error(`no role ${roleName}`);
  return [...role.secretIds.values()].filter((e) => secretIdLive(s, e)).length;
}

/** Mounts a PKI engine with a real root CA and an intermediate CA that signs the leaves. */
export function mountPki(s: State, path: string, opts: PkiMountOptions = {}): void {
  const p = normMount(path);
  const m = addMount(s, p, "pki", "pki", "PKI secrets engine");
  m.pki = {
    ca: createCaHierarchy(trimSlashes(p), s.clock.now()),
    issuerId: randomUUID(),
    defaultTtl: opts.ttl ?? 0,
    maxTtl: opts.maxTtl ?? 0,
    roles: new Map(),
    issued: [],
    mismatch: false,
  };
}

function pkiState(s: State, mount: string): PkiState {
  const st = s.mounts.get(normMount(mount))?.pki;
  if (!st) throw new Error(`no PKI mount at ${mount}`);
  return st;
}

export function addPkiRole(s: State, mount: string, role: string, opts: PkiRoleOptions = {}): void {
  const st = pkiState(s, mount);
  const spec = keySpec(opts.keyType, opts.keyBits);
  const ttl = opts.ttl ?? 0;
  const maxTtl = opts.maxTtl ?? 0;
  if (ttl > 0 && maxTtl > 0 && ttl > maxTtl) throw new Error(`"ttl" value must be less than "max_ttl" value`);
  st.roles.set(role, {
    allowedDomains: [...(opts.allowedDomains ?? [])],
    allowSubdomains: opts.allowSubdomains ?? false,
    allowBareDomains: opts.allowBareDomains ?? false,
    allowGlobDomains: opts.allowGlobDomains ?? false,
    allowAnyName: opts.allowAnyName ?? false,
    allowLocalhost: opts.allowLocalhost ?? true,
    allowIpSans: opts.allowIpSans ?? false,
    ttl,
    maxTtl,
    keyType: spec.type,
    keyBits: spec.bits,
    generateLease: opts.generateLease ?? false,
  });
  s.keyPool.warm(spec.type, spec.bits);
}

/** Certificates issued so far on a PKI mount, oldest first. Count issue calls with `countRequests`. */
export function pkiIssued(s: State, mount: string): PkiIssuedCert[] {
  return pkiState(s, mount).issued.map((c) => ({ ...c }));
}

/** While on, issue responses carry a private key that does not match the certificate. */
export function setPkiMismatch(s: State, mount: string, on: boolean): void {
  pkiState(s, mount).mismatch = on;
}

export function pkiCaChain(s: State, mount: string): { root: string; intermediate: string } {
  const { ca } = pkiState(s, mount);
  return { root: `${ca.root.pem}\n`, intermediate: `${ca.intermediate.pem}\n` };
}

export function mountDatabase(s: State, path: string): void {
  const m = addMount(s, normMount(path), "database", "database", "database secrets engine");
  m.dbRoles = new Map();
}

export function addDbRole(s: State, mount: string, role: string, opts: DbRoleOptions): void {
  const roles = s.mounts.get(normMount(mount))?.dbRoles;
  if (!roles) throw new Error(`no database mount at ${mount}`);
  if (opts.maxTtl > 0 && opts.defaultTtl > opts.maxTtl) throw new Error("default_ttl cannot be greater than max_ttl");
  roles.set(role, { defaultTtl: opts.defaultTtl, maxTtl: opts.maxTtl, renewable: opts.renewable ?? true });
}
