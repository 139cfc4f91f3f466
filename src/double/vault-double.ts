/**
 * A Vault-API-compatible test double: a loopback HTTP(S) server that reproduces HashiCorp Vault's
 * wire behaviour as described in the project's Vault wire reference (`vault-api.md`).
 *
 * Scope: KV v1/v2, AppRole (incl. secret-id lookup/destroy), token self-service, response wrapping,
 * PKI issuance with real certificates, dynamic database credentials with leases
 * (`sys/leases/renew|revoke|lookup`), the KV preflight (`sys/internal/ui/mounts`), `sys/health`, ACL
 * policies, a few `sys/` helpers, plus fault injection, latency, a virtual clock and a request log;
 * and the admin writes of docs/operations.md (`sys/policies/acl/*`, `sys/mounts/*`, `sys/auth/*`,
 * `auth/<mount>/role/<role>`) under the same ACL.
 *
 * Documented choices where the reference leaves room:
 * - Admin writes: vault-api.md does not cover `sys/mounts`, `sys/auth` or AppRole role writes; they
 *   follow Vault's handlers (a second mount `400 path is already in use at <path>/`, a type the
 *   double does not implement `400 plugin not found in the catalog: <type>`, role writes 204 and
 *   an existence check: `create` for a new role, `update` for an existing one).
 * - Standby: real Vault forwards to (or redirects at) the active node. This double has no active
 *   node to forward to, so while `setStandby(true)` every non-health route answers
 *   `503 {"errors":["node is not active"]}` (the reference's text for a node that is not active);
 *   `sys/health` reports the standby state (429 by default). A 307 redirect can be simulated with
 *   a `redirectTo` fault.
 * - Uninitialized: treated like sealed for every non-health route (503 `Vault is sealed`).
 * - JSON bodies are encoded like Go's `encoding/json`: map keys inside `data` (and `auth.metadata`)
 *   are sorted, `<`, `>`, `&`, U+2028 and U+2029 are escaped as `\u00XX`, normal bodies end with
 *   `\n`, raw bodies (KV v2 deleted-version 404, KV v2 invalid-path 404) do not.
 * - Write ACL: POST/PUT needs `create` when the target does not exist yet and `update` when it does
 *   (Vault's existence check); endpoints without an existence check (secret-id generation,
 *   delete/undelete/destroy, token endpoints, ...) need `update`.
 * - TTL values reported by lookup-self are the remaining seconds, rounded to the nearest second, so
 *   tests that use `advanceTime` see exact numbers. The same holds for lease TTLs.
 * - PKI: CAs are EC P-256 (created synchronously by `mountPki`); leaves use the role's key type.
 *   notBefore = double-now − 30 s (Vault's default `not_before_duration`), notAfter = double-now +
 *   ttl. `format=pem_bundle` puts key + "\n" + certificate into `certificate`. A TTL above the
 *   role's max_ttl is capped with Vault's warning. `issue` is allowed with `update` or `create`.
 * - Leases: renewing an unknown, expired or revoked lease gives 400 `lease not found`; a
 *   non-renewable one gives 400 `lease is not renewable` (current Vault text; older servers said
 *   `lease not found or lease is not renewable`). A renewal capped at max_ttl carries Vault's
 *   `TTL of ... exceeded the effective max_ttl ...` warning. Revoking an unknown lease is 204.
 *   Expired leases count as revoked by Vault's expiration manager (their credentials stop working).
 * - Lifecycles (vault-api.md §5.3, §10): every lease belongs to the token whose request created it.
 *   Revoking a token (revoke-self, auth/token/revoke, `revokeToken`, its last use) revokes its child
 *   tokens and every lease they created; so does a token's expiry on the double's clock (Vault's
 *   expiration manager revokes an expired token like a revoked one). Expiry is applied before each
 *   request and by `advanceTime`, `leaseInfo`, `activeLeases`, `dbCredentialValid`, `tokenInfo`.
 *   A lease that is gone this way answers like any revoked lease: renew 400 `lease not found`,
 *   lookup 400 `invalid lease`, revoke 204. Tokens from `createToken` are children of the root
 *   token; AppRole tokens are orphans. Periodic tokens (`tokenPeriod`) get the period as TTL on
 *   login and on every renewal and have no max TTL (Vault's CalculateTTL).
 * - Policies are resolved by name on every request, as in Vault: editing or deleting a policy
 *   applies to live tokens at once, and a token may name a policy that does not exist (yet).
 *
 * Layout: this file is the facade (`startVaultDouble`, `VaultDouble`); `http.ts` (server, request
 * log, encoding), `faults.ts`, `router.ts` (request building, auth, ACL, routing), `state.ts`,
 * `clock.ts`, `model/` (tokens, leases, wrapping, mounts, policies), `auth/` (token, approle),
 * `engines/` (kv, pki, database, generic), `sys.ts`, `fixtures.ts` (seeding and inspection helpers).
 */
import type { AddressInfo, Socket } from "node:net";
import type http from "node:http";
import * as fx from "./fixtures.js";
import { addFault, clearFaults } from "./faults.js";
import { createServer } from "./http.js";
import { activeLeases, dbCredentialValid, leaseInfo, revokeLease } from "./model/leases.js";
import { addMount } from "./model/mounts.js";
import { DEFAULT_POLICY_HCL, addPolicy } from "./model/policies.js";
import { expireTokens, newToken, revokeToken, tokenInfo } from "./model/tokens.js";
import { parsePolicy } from "./acl.js";
import { State } from "./state.js";
import type {
  AppRoleOptions,
  CreateTokenOptions,
  DbRoleOptions,
  Fault,
  GenericOptions,
  LeaseInfo,
  PkiIssuedCert,
  PkiMountOptions,
  PkiRoleOptions,
  RequestLogEntry,
  VaultDoubleOptions,
} from "./types.js";
import { randomBase62 } from "./util.js";

export type * from "./types.js";
export { multiError } from "./util.js";
export { goDuration, parseDurationSecond } from "./duration.js";

export async function startVaultDouble(opts: VaultDoubleOptions = {}): Promise<VaultDouble> {
  const d = new VaultDouble(opts);
  await d.listen();
  return d;
}

export class VaultDouble {
  private urlValue = "";
  readonly rootToken: string;
  readonly requests: RequestLogEntry[];

  private readonly opts: VaultDoubleOptions;
  private readonly s: State;
  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();

  constructor(opts: VaultDoubleOptions = {}) {
    this.opts = opts;
    const s = new State(opts.version ?? "1.19.0", Boolean(opts.tls));
    this.s = s;
    this.requests = s.requests;
    s.policies.set("default", parsePolicy("default", DEFAULT_POLICY_HCL));
    addMount(s, "sys/", "system", "system", "system endpoints used for control, policy and debugging");
    addMount(s, "cubbyhole/", "cubbyhole", "cubbyhole", "per-token private secret storage");
    addMount(s, "identity/", "identity", "identity", "identity store");
    addMount(s, "auth/token/", "token", "token", "token based credentials");
    const root = newToken(s, {
      id: opts.rootToken ?? `hvs.${randomBase62(24)}`,
      policies: ["root"],
      ttl: 0,
      path: "auth/token/root",
      displayName: "root",
      orphan: true,
      renewable: false,
      meta: null,
    });
    this.rootToken = root.id;
    s.rootToken = root.id;
    this.server = createServer(s, opts.tls, this.sockets);
  }

  /** @internal used by startVaultDouble */
  async listen(): Promise<void> {
    const host = this.opts.host ?? "127.0.0.1";
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.opts.port ?? 0, host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    const addr = this.server.address() as AddressInfo;
    const h = host.includes(":") ? `[${host}]` : host;
    this.urlValue = `${this.opts.tls ? "https" : "http"}://${h}:${addr.port}`;
  }

  /** e.g. http://127.0.0.1:38123 */
  get url(): string {
    return this.urlValue;
  }

  close(): Promise<void> {
    this.s.keyPool.stop();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
      this.sockets.clear();
    });
  }

  // --- clock ----------------------------------------------------------------------------------

  /** The double's current time in ms since the epoch (real time + advanceTime offsets). */
  now(): number {
    return this.s.clock.now();
  }

  /**
   * Drive the double's clock from a test's own clock (e.g. the fake `Clock` given to the core), so
   * both see the same instant; `null` goes back to real time. `advanceTime` offsets add on top.
   */
  setClock(now: (() => number) | null): void {
    this.s.clock.setSource(now);
  }

  advanceTime(seconds: number): void {
    this.s.clock.advance(seconds);
    expireTokens(this.s);
  }

  // --- mounts and KV --------------------------------------------------------------------------

  mountKv(path: string, version: 1 | 2): void {
    fx.mountKv(this.s, path, version);
  }
  kvPut(mount: string, path: string, data: Record<string, unknown>): number {
    return fx.kvPut(this.s, mount, path, data);
  }
  kvSoftDelete(mount: string, path: string, versions?: number[]): void {
    fx.kvSoftDelete(this.s, mount, path, versions);
  }
  kvUndelete(mount: string, path: string, versions: number[]): void {
    fx.kvUndelete(this.s, mount, path, versions);
  }
  kvDestroy(mount: string, path: string, versions: number[]): void {
    fx.kvDestroy(this.s, mount, path, versions);
  }
  kvCurrent(mount: string, path: string): { version: number; data: Record<string, unknown> | null } | undefined {
    return fx.kvCurrent(this.s, mount, path);
  }
  setGeneric(path: string, data: Record<string, unknown>, opts: GenericOptions = {}): void {
    fx.setGeneric(this.s, path, data, opts);
  }

  // --- policies and tokens --------------------------------------------------------------------

  addPolicy(name: string, hcl: string): void {
    addPolicy(this.s, name, hcl);
  }
  createToken(opts: CreateTokenOptions): string {
    return fx.createToken(this.s, opts);
  }
  /**
   * Revokes a token as Vault's token store does: its child tokens first (recursively), then
   * every lease the token created (vault-api.md §5.3). Unknown tokens are ignored.
   */
  revokeToken(token: string): void {
    revokeToken(this.s, token);
  }
  tokenInfo(token: string): { ttl: number; renewable: boolean; policies: string[]; accessor: string } | undefined {
    return tokenInfo(this.s, token);
  }

  // --- AppRole --------------------------------------------------------------------------------

  addAppRole(opts: AppRoleOptions): { roleId: string } {
    return fx.addAppRole(this.s, opts);
  }
  generateSecretId(
    roleName: string,
    opts: { mount?: string; wrapTtl?: number } = {},
  ): { secretId: string; accessor: string } | { wrappingToken: string; accessor: string } {
    return fx.generateSecretId(this.s, roleName, opts);
  }
  /** Live (unexpired, not used up) secret-ids of a role. */
  secretIdCount(roleName: string, mount?: string): number {
    return fx.secretIdCount(this.s, roleName, mount);
  }

  // --- PKI ------------------------------------------------------------------------------------

  /** Mounts a PKI engine with a real root CA and an intermediate CA that signs the leaves. */
  mountPki(path: string, opts: PkiMountOptions = {}): void {
    fx.mountPki(this.s, path, opts);
  }
  addPkiRole(mount: string, role: string, opts: PkiRoleOptions = {}): void {
    fx.addPkiRole(this.s, mount, role, opts);
  }
  /** Certificates issued so far on a PKI mount, oldest first. Count issue calls with `countRequests`. */
  pkiIssued(mount: string): PkiIssuedCert[] {
    return fx.pkiIssued(this.s, mount);
  }
  /** While on, issue responses carry a private key that does not match the certificate. */
  setPkiMismatch(mount: string, on: boolean): void {
    fx.setPkiMismatch(this.s, mount, on);
  }
  pkiCaChain(mount: string): { root: string; intermediate: string } {
    return fx.pkiCaChain(this.s, mount);
  }

  // --- database engine and leases -------------------------------------------------------------

  mountDatabase(path: string): void {
    fx.mountDatabase(this.s, path);
  }
  addDbRole(mount: string, role: string, opts: DbRoleOptions): void {
    fx.addDbRole(this.s, mount, role, opts);
  }
  leaseInfo(leaseId: string): LeaseInfo | undefined {
    return leaseInfo(this.s, leaseId);
  }
  /** Ids of leases that are neither revoked nor expired, optionally only those under `mount`. */
  activeLeases(mount?: string): string[] {
    return activeLeases(this.s, mount);
  }
  /** Revokes a lease as `sys/leases/revoke` does; false when the lease is unknown. */
  revokeLease(leaseId: string): boolean {
    return revokeLease(this.s, leaseId);
  }
  /** Whether a username/password pair from `<mount>/creds/<role>` would still log in to the database. */
  dbCredentialValid(username: string, password: string): boolean {
    return dbCredentialValid(this.s, username, password);
  }

  // --- state, faults and the request log ------------------------------------------------------

  seal(): void {
    this.s.sealed = true;
  }
  unseal(): void {
    this.s.sealed = false;
  }
  setInitialized(v: boolean): void {
    this.s.initialized = v;
  }
  setStandby(v: boolean): void {
    this.s.standby = v;
  }

  addFault(f: Fault): () => void {
    return addFault(this.s, f);
  }
  clearFaults(): void {
    clearFaults(this.s);
  }
  setLatency(ms: number): void {
    this.s.latencyMs = Math.max(0, ms);
  }
  /** Every latency slept before an answer (global or a fault's), in ms, in order. */
  latencyWaits(): number[] {
    return [...this.s.latencyWaits];
  }
  /** Leaf keys taken from the background pool vs generated on the request path. */
  keyPoolStats(): { fromPool: number; onDemand: number } {
    return { ...this.s.keyPool.stats };
  }

  clearRequests(): void {
    this.requests.length = 0;
  }
  countRequests(filter: { method?: string; path?: string | RegExp } = {}): number {
    return this.requests.filter((r) => {
      if (filter.method && r.method.toUpperCase() !== filter.method.toUpperCase()) return false;
      if (filter.path !== undefined) {
        if (typeof filter.path === "string") return r.path === filter.path;
        filter.path.lastIndex = 0;
        return filter.path.test(r.path);
      }
      return true;
    }).length;
  }
}
