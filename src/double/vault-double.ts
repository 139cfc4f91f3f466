/**
 * A Vault-API-compatible test double: a loopback HTTP(S) server that reproduces HashiCorp Vault's
 * wire behaviour as described in the project's Vault wire reference (`vault-api.md`).
 *
 * Scope: KV v1/v2, AppRole (incl. secret-id lookup/destroy), token self-service, response wrapping,
 * PKI issuance with real certificates, dynamic database credentials with leases
 * (`sys/leases/renew|revoke|lookup`), the KV preflight (`sys/internal/ui/mounts`), `sys/health`, ACL
 * policies, a few `sys/` helpers, plus fault injection, latency, a virtual clock and a request log.
 *
 * Documented choices where the reference leaves room:
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
 */
import http from "node:http";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { randomBytes, randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Acl, parsePolicy } from "./acl.js";
import type { Capability, Policy } from "./acl.js";
import { KeyPool, createCaHierarchy, exportPrivateKey, ipBytes, keySpec, signLeaf } from "./pki.js";
import type { CaHierarchy, KeyType } from "./pki.js";

// ---------------------------------------------------------------------------------------------
// Public types

export interface VaultDoubleOptions {
  tls?: { cert: string; key: string };
  /** default 127.0.0.1 */
  host?: string;
  /** default 0 (a free port) */
  port?: number;
  /** Use this value as the root token instead of a random `hvs.` token. */
  rootToken?: string;
  /** Version reported by sys/health (default "1.19.0"). */
  version?: string;
}

export interface RequestLogEntry {
  time: number;
  method: string;
  /** without the /v1/ prefix and without the query */
  path: string;
  query: Record<string, string>;
  /** 0 when no response was sent (drop/hang faults, client went away) */
  status: number;
  tokenAccessor: string | null;
  wrapped: boolean;
}

export interface Fault {
  /** matched against the path without /v1/ (e.g. "secret/data/app"); omitted = all paths */
  path?: string | RegExp;
  method?: string;
  /** how many matching requests it affects (default: unlimited) */
  times?: number;
  /** respond with this status and `body` (default body: Vault's error body for that status) */
  status?: number;
  /** raw body bytes to send */
  body?: string;
  contentType?: string;
  headers?: Record<string, string>;
  latencyMs?: number;
  /** destroy the socket without answering (connection reset) */
  drop?: boolean;
  /**
   * process the request (its side effect happens: a login burns a secret_id use, an issue makes a
   * certificate, a creds read makes credentials), then destroy the socket without answering
   */
  dropAfter?: boolean;
  /** never answer; sockets are destroyed on close() */
  hang?: boolean;
  /** 200 with Content-Type application/json and a truncated JSON body */
  malformed?: boolean;
  /** 502 with an HTML page as a proxy would send */
  html?: boolean;
  /** 307 (or `redirectStatus`) with Location: redirectTo + same path and query */
  redirectTo?: string;
  /** the redirect's status, default 307 (a standby's `respondStandby`); 308 is the permanent form */
  redirectStatus?: 301 | 302 | 303 | 307 | 308;
}

export interface AppRoleOptions {
  mount?: string;
  roleName: string;
  roleId?: string;
  policies: string[];
  tokenTtl?: number;
  tokenMaxTtl?: number;
  /** token_period (seconds): periodic tokens, renewable indefinitely, no max TTL */
  tokenPeriod?: number;
  tokenType?: "service" | "batch";
  secretIdTtl?: number;
  secretIdNumUses?: number;
}

export interface CreateTokenOptions {
  policies: string[];
  ttl?: number;
  /** explicit max TTL in seconds (0/absent: the system max, 2764800) */
  maxTtl?: number;
  renewable?: boolean;
  /** use this exact token value */
  id?: string;
  meta?: Record<string, string>;
  displayName?: string;
  type?: "service" | "batch";
  /** number of uses (0 = unlimited) */
  numUses?: number;
  /** parent token (default: the root token); null for an orphan */
  parent?: string | null;
  /** period in seconds (a periodic token) */
  period?: number;
}

export interface PkiMountOptions {
  /** default TTL (seconds) for roles without one (default: the system default, 768h) */
  ttl?: number;
  /** default max TTL (seconds) for roles without one (default: the system max, 768h) */
  maxTtl?: number;
}

export interface PkiRoleOptions {
  allowedDomains?: string[];
  allowSubdomains?: boolean;
  /** allow the allowed domains themselves (default false, as Vault) */
  allowBareDomains?: boolean;
  /** allowed domains may contain `*` globs (default false) */
  allowGlobDomains?: boolean;
  allowAnyName?: boolean;
  /** default true, as Vault */
  allowLocalhost?: boolean;
  allowIpSans?: boolean;
  ttl?: number;
  maxTtl?: number;
  keyType?: "rsa" | "ec";
  keyBits?: number;
  generateLease?: boolean;
}

export interface PkiIssuedCert {
  /** colon-separated lowercase hex, as `serial_number` */
  serial: string;
  commonName: string;
  /** ms since the epoch */
  notAfter: number;
}

export interface DbRoleOptions {
  defaultTtl: number;
  maxTtl: number;
  /** default true */
  renewable?: boolean;
}

export interface LeaseInfo {
  /** ms since the epoch (double clock) */
  expiresAt: number;
  renewable: boolean;
  /** revoked: through the API or sys/leases/revoke, or with the token that created it */
  revoked: boolean;
  /** accessor of the token whose request created the lease (null: a fixture or a batch token) */
  tokenAccessor: string | null;
  /** past its expiry on the double's clock */
  expired: boolean;
  /** "" for certificate leases */
  username: string;
  issuedAt: number;
  maxExpiresAt: number;
}

export interface GenericOptions {
  /** mount_type reported (default: the owning mount's type, else the first path segment) */
  mountType?: string;
  leaseId?: string;
  leaseDuration?: number;
  renewable?: boolean;
  warnings?: string[];
}

// ---------------------------------------------------------------------------------------------
// Constants and small helpers

const MAX_BODY = 32 * 1024 * 1024;
const DEFAULT_LEASE_TTL = 2764800; // 768h
const SYSTEM_MAX_TTL = 2764800;
const PERMISSION_DENIED = "permission denied";
const ME_PERMISSION_DENIED = multiError("permission denied");
const ME_INVALID_TOKEN = multiError("permission denied", "invalid token");
const ME_UNSUPPORTED_OP = multiError("unsupported operation");
const ME_UNSUPPORTED_PATH = multiError("unsupported path");
const INVALID_WRAPPING_TOKEN = "wrapping token is not valid or does not exist";
const INVALID_ROLE_OR_SECRET = "invalid role or secret ID";

const DEFAULT_POLICY_HCL = `
path "auth/token/lookup-self" { capabilities = ["read"] }
path "auth/token/renew-self" { capabilities = ["update"] }
path "auth/token/revoke-self" { capabilities = ["update"] }
path "sys/capabilities-self" { capabilities = ["update"] }
path "sys/leases/lookup" { capabilities = ["update"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/renew" { capabilities = ["update"] }
path "sys/wrapping/wrap" { capabilities = ["update"] }
path "sys/wrapping/lookup" { capabilities = ["update"] }
path "sys/wrapping/unwrap" { capabilities = ["update"] }
path "cubbyhole/*" { capabilities = ["create", "read", "update", "delete", "list"] }
`;

/** Go's hashicorp/go-multierror rendering. */
export function multiError(...msgs: string[]): string {
  const head = msgs.length === 1 ? "1 error occurred:" : `${msgs.length} errors occurred:`;
  return `${head}\n${msgs.map((m) => `\t* ${m}`).join("\n")}\n\n`;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Recursively sorts object keys (Go marshals map[string]interface{} with sorted keys). */
function sortDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortDeep);
  if (isObj(v)) {
    // Without a prototype: a key "__proto__" (a Go map carries any key) stays a key.
    const out = Object.create(null) as Obj;
    for (const k of Object.keys(v).sort()) out[k] = sortDeep(v[k]);
    return out;
  }
  return v;
}

/** JSON like Go's encoding/json with HTML escaping. */
function goJson(v: unknown): string {
  return JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

const B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
function randomBase62(n: number): string {
  let s = "";
  while (s.length < n) {
    for (const b of randomBytes(n * 2)) {
      if (b < 248 && s.length < n) s += B62[b % 62];
    }
  }
  return s;
}

function hex(n: number): string {
  return randomBytes(Math.ceil(n / 2)).toString("hex").slice(0, n);
}

interface Stamp {
  ms: number;
  /** sub-millisecond nanoseconds, 0..999999 */
  ns: number;
}

/** RFC 3339 with up to nine fractional digits, trailing zeros trimmed (Go's RFC3339Nano). */
function fmtTime(s: Stamp): string {
  const iso = new Date(s.ms).toISOString();
  const frac = (iso.slice(20, 23) + String(s.ns).padStart(6, "0")).replace(/0+$/, "");
  return `${iso.slice(0, 19)}${frac ? `.${frac}` : ""}Z`;
}

/** Go's time.Duration.String() for whole seconds. */
export function goDuration(totalSeconds: number): string {
  let s = Math.trunc(totalSeconds);
  if (s === 0) return "0s";
  const neg = s < 0;
  s = Math.abs(s);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const body = h > 0 ? `${h}h${m}m${sec}s` : m > 0 ? `${m}m${sec}s` : `${sec}s`;
  return neg ? `-${body}` : body;
}

const GO_UNITS: Record<string, number> = { ns: 1e-9, us: 1e-6, "µs": 1e-6, "μs": 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };

/** hashicorp/go-secure-stdlib parseutil.ParseDurationSecond: bare integer = seconds, else a Go duration. */
export function parseDurationSecond(v: unknown): number {
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new Error(`time: invalid duration "${String(v)}"`);
    return Math.trunc(v);
  }
  if (typeof v !== "string") throw new Error(`could not parse duration from input`);
  const s = v.trim();
  if (s === "") return 0;
  if (/^[+-]?\d+$/.test(s)) return parseInt(s, 10);
  const m = /^([+-]?)((?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/.exec(s);
  if (!m) throw new Error(`time: invalid duration ${JSON.stringify(s)}`);
  let total = 0;
  for (const part of (m[2] as string).matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
    total += Number(part[1]) * (GO_UNITS[part[2] as string] as number);
  }
  return Math.trunc(m[1] === "-" ? -total : total);
}

/** Go strconv.ParseBool. */
function parseGoBool(s: string): boolean | undefined {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(s)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(s)) return false;
  return undefined;
}

/** Go strconv.Atoi. */
function parseGoInt(s: string): number | undefined {
  if (!/^[+-]?\d+$/.test(s)) return undefined;
  const n = parseInt(s, 10);
  return Number.isSafeInteger(n) ? n : undefined;
}

function normMount(p: string): string {
  const t = p.replace(/^\/+|\/+$/g, "");
  if (!t) throw new Error("mount path must not be empty");
  return `${t}/`;
}

function trimSlashes(p: string): string {
  return p.replace(/^\/+|\/+$/g, "");
}

/** Weak decode of a number (int or numeric string), as Vault's mapstructure does. */
function weakInt(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isFinite(v)) return Math.trunc(v);
  if (typeof v === "string" && /^[+-]?\d+$/.test(v.trim())) return parseInt(v.trim(), 10);
  return undefined;
}

function weakString(v: unknown): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return "";
}

function versionList(v: unknown): number[] | undefined {
  if (Array.isArray(v)) {
    const out: number[] = [];
    for (const x of v) {
      const n = weakInt(x);
      if (n === undefined) return undefined;
      out.push(n);
    }
    return out;
  }
  if (typeof v === "string") return v.split(",").map((x) => weakInt(x)).filter((x): x is number => x !== undefined);
  const n = weakInt(v);
  return n === undefined ? undefined : [n];
}

// ---------------------------------------------------------------------------------------------
// Internal model

interface TokenEntry {
  id: string;
  accessor: string;
  policies: string[];
  isRoot: boolean;
  type: "service" | "batch";
  path: string;
  displayName: string;
  meta: Record<string, string> | null;
  orphan: boolean;
  entityId: string;
  /** remaining uses, 0 = unlimited */
  numUses: number;
  issue: Stamp;
  creationTtl: number;
  explicitMaxTtl: number;
  expireAtMs: number | null;
  maxExpireAtMs: number | null;
  renewable: boolean;
  lastRenewal: Stamp | null;
  /** id of the parent token; null for orphans */
  parent: string | null;
  /** seconds; 0 = not periodic */
  period: number;
}

interface WrapInfo {
  token: string;
  accessor: string;
  ttl: number;
  creation_time: string;
  creation_path: string;
  wrapped_accessor?: string;
}

interface Env {
  leaseId?: string;
  renewable?: boolean;
  leaseDuration?: number;
  data: unknown;
  wrapInfo?: WrapInfo | null;
  warnings?: string[] | null;
  auth?: Obj | null;
  mountType: string;
  /** "" for wrapped responses; default: a fresh UUID */
  requestId?: string;
}

interface WrapEntry {
  token: string;
  accessor: string;
  ttl: number;
  created: Stamp;
  creationPath: string;
  env: Env;
  expireAtMs: number;
  wrappedAccessor?: string;
}

interface SecretIdEntry {
  secretId: string;
  accessor: string;
  created: Stamp;
  ttl: number;
  numUses: number;
  /** remaining uses (0 = unlimited) */
  usesLeft: number;
  expireAtMs: number | null;
  metadata: Record<string, string>;
}

interface AppRole {
  roleName: string;
  roleId: string;
  policies: string[];
  tokenTtl: number;
  tokenMaxTtl: number;
  tokenPeriod: number;
  tokenType: "service" | "batch";
  secretIdTtl: number;
  secretIdNumUses: number;
  entityId: string;
  secretIds: Map<string, SecretIdEntry>;
}

interface KvVersion {
  created: Stamp;
  deletion: Stamp | null;
  destroyed: boolean;
  data: Obj | null;
}

interface KvKey {
  created: Stamp;
  updated: Stamp;
  current: number;
  versions: Map<number, KvVersion>;
  customMetadata: Record<string, string> | null;
  maxVersions: number;
  casRequired: boolean;
  deleteVersionAfter: string;
}

type MountKind = "kv1" | "kv2" | "approle" | "token" | "system" | "generic" | "cubbyhole" | "identity" | "pki" | "database";

interface PkiRole {
  allowedDomains: string[];
  allowSubdomains: boolean;
  allowBareDomains: boolean;
  allowGlobDomains: boolean;
  allowAnyName: boolean;
  allowLocalhost: boolean;
  allowIpSans: boolean;
  ttl: number;
  maxTtl: number;
  keyType: KeyType;
  keyBits: number;
  generateLease: boolean;
}

interface PkiState {
  ca: CaHierarchy;
  issuerId: string;
  defaultTtl: number;
  maxTtl: number;
  roles: Map<string, PkiRole>;
  issued: PkiIssuedCert[];
  mismatch: boolean;
}

interface DbRole {
  defaultTtl: number;
  maxTtl: number;
  renewable: boolean;
}

interface LeaseEntry {
  id: string;
  mount: string;
  issue: Stamp;
  expireAtMs: number;
  maxExpireAtMs: number;
  defaultTtl: number;
  renewable: boolean;
  revoked: boolean;
  lastRenewal: Stamp | null;
  username: string;
  password: string;
  /** id of the token whose request created it (revoked with it); null for none */
  creator: string | null;
  creatorAccessor: string | null;
}

interface Mount {
  path: string;
  type: string;
  kind: MountKind;
  accessor: string;
  uuid: string;
  description: string;
  options: Record<string, string> | null;
  runningVersion: string;
  kv1: Map<string, Obj>;
  kv2: Map<string, KvKey>;
  kv2Config: { casRequired: boolean; maxVersions: number; deleteVersionAfter: string };
  roles: Map<string, AppRole>;
  pki?: PkiState;
  dbRoles?: Map<string, DbRole>;
}

interface GenericEntry {
  data: Obj;
  opts: GenericOptions;
}

type Result =
  | { t: "env"; env: Env; status?: number; raw?: boolean; wrappedAccessor?: string }
  | { t: "empty"; status: number }
  | { t: "err"; status: number; errors: string[] }
  | { t: "bytes"; status: number; body: string; contentType?: string; headers?: Record<string, string> };

type Op = "read" | "list" | "write" | "delete" | "patch";

interface Ctx {
  method: string;
  path: string;
  op: Op;
  query: URLSearchParams;
  body: Obj;
  headerToken: string;
  token: TokenEntry | null;
}

function err(status: number, ...errors: string[]): Result {
  return { t: "err", status, errors };
}
const NOT_FOUND: Result = { t: "err", status: 404, errors: [] };
const NO_CONTENT: Result = { t: "empty", status: 204 };

function ok(env: Env, extra: { wrappedAccessor?: string } = {}): Result {
  return { t: "env", env, ...extra };
}

// ---------------------------------------------------------------------------------------------
// The double

export async function startVaultDouble(opts: VaultDoubleOptions = {}): Promise<VaultDouble> {
  const d = new VaultDouble(opts);
  await d.listen();
  return d;
}

export class VaultDouble {
  private urlValue = "";
  readonly rootToken: string;
  readonly requests: RequestLogEntry[] = [];

  private readonly opts: VaultDoubleOptions;
  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();
  private readonly versionString: string;
  private readonly clusterName = `vault-cluster-${hex(8)}`;
  private readonly clusterId = randomUUID();

  private clockOffsetMs = 0;
  private clockSource: (() => number) | null = null;
  private latencyMs = 0;
  private sealed = false;
  private initialized = true;
  private standby = false;
  private faults: { f: Fault; remaining: number }[] = [];

  private readonly tokens = new Map<string, TokenEntry>();
  private readonly deadTokenAccessors = new Map<string, string>();
  private readonly wraps = new Map<string, WrapEntry>();
  private readonly policies = new Map<string, Policy>();
  private readonly policyText = new Map<string, string>();
  private readonly aclCache = new Map<string, Acl>();
  private readonly mounts = new Map<string, Mount>();
  private readonly generic = new Map<string, GenericEntry>();
  private readonly leases = new Map<string, LeaseEntry>();
  private readonly keyPool = new KeyPool();

  constructor(opts: VaultDoubleOptions = {}) {
    this.opts = opts;
    this.versionString = opts.version ?? "1.19.0";
    this.policies.set("default", parsePolicy("default", DEFAULT_POLICY_HCL));
    this.addMount("sys/", "system", "system", "system endpoints used for control, policy and debugging");
    this.addMount("cubbyhole/", "cubbyhole", "cubbyhole", "per-token private secret storage");
    this.addMount("identity/", "identity", "identity", "identity store");
    this.addMount("auth/token/", "token", "token", "token based credentials");
    const root = this.newToken({
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
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      this.onRequest(req, res).catch(() => {
        if (!res.headersSent && !res.destroyed) {
          res.writeHead(500, { "Cache-Control": "no-store", "Content-Type": "application/json" });
          res.end(`${goJson({ errors: [multiError("internal error")] })}\n`);
        }
      });
    };
    this.server = opts.tls ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, handler) : http.createServer(handler);
    this.server.keepAliveTimeout = 5000;
    const track = (s: Socket): void => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    };
    this.server.on(opts.tls ? "secureConnection" : "connection", track);
    if (opts.tls) this.server.on("connection", track);
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
    this.keyPool.stop();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
      this.sockets.clear();
    });
  }

  // --- clock ----------------------------------------------------------------------------------

  /** The double's current time in ms since the epoch (real time + advanceTime offsets). */
  now(): number {
    return (this.clockSource?.() ?? Date.now()) + this.clockOffsetMs;
  }

  /**
   * Drive the double's clock from a test's own clock (e.g. the fake `Clock` given to the core), so
   * both see the same instant; `null` goes back to real time. `advanceTime` offsets add on top.
   */
  setClock(now: (() => number) | null): void {
    this.clockSource = now;
  }

  private stamp(): Stamp {
    return { ms: this.now(), ns: Number(process.hrtime.bigint() % 1000000n) };
  }

  advanceTime(seconds: number): void {
    this.clockOffsetMs += seconds * 1000;
    this.expireTokens();
  }

  // --- mounts and KV --------------------------------------------------------------------------

  private addMount(path: string, type: string, kind: MountKind, description: string, options: Record<string, string> | null = null): Mount {
    const m: Mount = {
      path,
      type,
      kind,
      accessor: `${type}_${hex(8)}`,
      uuid: randomUUID(),
      description,
      options,
      runningVersion: kind === "kv1" || kind === "kv2" ? "v0.20.0+builtin" : `v${this.versionString}+builtin.vault`,
      kv1: new Map(),
      kv2: new Map(),
      kv2Config: { casRequired: false, maxVersions: 0, deleteVersionAfter: "0s" },
      roles: new Map(),
    };
    this.mounts.set(path, m);
    return m;
  }

  mountKv(path: string, version: 1 | 2): void {
    const p = normMount(path);
    this.addMount(p, "kv", version === 2 ? "kv2" : "kv1", "key/value secret storage", version === 2 ? { version: "2" } : null);
  }

  private kvMount(mount: string): Mount {
    const m = this.mounts.get(normMount(mount));
    if (!m || (m.kind !== "kv1" && m.kind !== "kv2")) throw new Error(`no KV mount at ${mount}`);
    return m;
  }

  kvPut(mount: string, path: string, data: Record<string, unknown>): number {
    const m = this.kvMount(mount);
    const key = trimSlashes(path);
    if (m.kind === "kv1") {
      m.kv1.set(key, clone(data));
      return 0;
    }
    return this.kv2Write(m, key, clone(data)).version;
  }

  kvSoftDelete(mount: string, path: string, versions?: number[]): void {
    const m = this.kvMount(mount);
    const key = trimSlashes(path);
    if (m.kind === "kv1") {
      m.kv1.delete(key);
      return;
    }
    const k = m.kv2.get(key);
    if (!k) return;
    this.kv2SoftDelete(k, versions ?? [k.current]);
  }

  kvUndelete(mount: string, path: string, versions: number[]): void {
    const k = this.kvMount(mount).kv2.get(trimSlashes(path));
    if (k) this.kv2Undelete(k, versions);
  }

  kvDestroy(mount: string, path: string, versions: number[]): void {
    const k = this.kvMount(mount).kv2.get(trimSlashes(path));
    if (k) this.kv2Destroy(k, versions);
  }

  kvCurrent(mount: string, path: string): { version: number; data: Record<string, unknown> | null } | undefined {
    const m = this.kvMount(mount);
    const key = trimSlashes(path);
    if (m.kind === "kv1") {
      const d = m.kv1.get(key);
      return d ? { version: 0, data: clone(d) } : undefined;
    }
    const k = m.kv2.get(key);
    if (!k) return undefined;
    const v = k.versions.get(k.current);
    const live = v && !v.destroyed && !this.isDeleted(v) && v.data ? clone(v.data) : null;
    return { version: k.current, data: live };
  }

  setGeneric(path: string, data: Record<string, unknown>, opts: GenericOptions = {}): void {
    const p = trimSlashes(path);
    if (!this.findMount(p)) {
      const first = p.split("/")[0] as string;
      this.addMount(`${first}/`, opts.mountType ?? first, "generic", "");
    }
    this.generic.set(p, { data: clone(data), opts });
  }

  private findMount(path: string): Mount | undefined {
    const probe = `${path}/`;
    let best: Mount | undefined;
    for (const m of this.mounts.values()) {
      if (probe.startsWith(m.path) && (!best || m.path.length > best.path.length)) best = m;
    }
    return best;
  }

  // --- policies and tokens --------------------------------------------------------------------

  addPolicy(name: string, hcl: string): void {
    this.policies.set(name, parsePolicy(name, hcl));
    this.aclCache.clear();
  }

  private aclFor(policies: string[]): Acl {
    const key = policies.join("\u0000");
    let acl = this.aclCache.get(key);
    if (!acl) {
      const pols: Policy[] = [];
      for (const n of policies) {
        const p = this.policies.get(n);
        if (p) pols.push(p);
      }
      acl = new Acl(pols);
      this.aclCache.set(key, acl);
    }
    return acl;
  }

  private newToken(o: {
    id?: string;
    policies: string[];
    ttl: number;
    maxTtl?: number;
    explicitMaxTtl?: number;
    path: string;
    displayName: string;
    orphan: boolean;
    renewable: boolean;
    meta: Record<string, string> | null;
    type?: "service" | "batch";
    entityId?: string;
    numUses?: number;
    parent?: string | null;
    period?: number;
  }): TokenEntry {
    const type = o.type ?? "service";
    const isRoot = o.policies.includes("root");
    const policies = isRoot ? ["root"] : [...new Set(["default", ...o.policies])].sort();
    const issue = this.stamp();
    const period = type === "batch" ? 0 : (o.period ?? 0);
    const explicitMax = o.explicitMaxTtl ?? 0;
    const maxTtl = o.maxTtl && o.maxTtl > 0 ? Math.min(o.maxTtl, SYSTEM_MAX_TTL) : SYSTEM_MAX_TTL;
    let ttl = o.ttl;
    // CalculateTTL: a periodic token's TTL is its period, capped only by an explicit max TTL.
    if (period > 0) ttl = explicitMax > 0 ? Math.min(period, explicitMax) : period;
    else if (!(isRoot && ttl === 0)) ttl = Math.min(ttl > 0 ? ttl : DEFAULT_LEASE_TTL, maxTtl);
    const neverExpires = isRoot && ttl === 0;
    const parent = o.parent !== undefined && o.parent !== null && this.tokens.has(o.parent) ? o.parent : null;
    const tok: TokenEntry = {
      id: o.id ?? (type === "batch" ? `hvb.${randomBase62(90)}` : `hvs.${randomBase62(24)}`),
      accessor: type === "batch" ? "" : randomBase62(24),
      policies,
      isRoot,
      type,
      path: o.path,
      displayName: o.displayName,
      meta: o.meta,
      orphan: o.orphan,
      entityId: o.entityId ?? "",
      numUses: o.numUses ?? 0,
      issue,
      creationTtl: ttl,
      explicitMaxTtl: o.explicitMaxTtl ?? 0,
      expireAtMs: neverExpires ? null : issue.ms + ttl * 1000,
      maxExpireAtMs: neverExpires || (period > 0 && explicitMax === 0) ? null : issue.ms + (period > 0 ? explicitMax : maxTtl) * 1000,
      renewable: type === "batch" || neverExpires ? false : o.renewable,
      lastRenewal: null,
      parent,
      period,
    };
    this.tokens.set(tok.id, tok);
    return tok;
  }

  createToken(opts: CreateTokenOptions): string {
    const explicit = opts.maxTtl ?? 0;
    return this.newToken({
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
      parent: opts.parent === undefined ? this.rootToken : opts.parent,
      period: opts.period,
    }).id;
  }

  /**
   * Revokes a token as Vault's token store does: its child tokens first (recursively), then
   * every lease the token created (vault-api.md §5.3). Unknown tokens are ignored.
   */
  revokeToken(token: string): void {
    const t = this.tokens.get(token);
    if (!t) return;
    this.tokens.delete(token);
    this.deadTokenAccessors.set(token, t.accessor);
    for (const c of [...this.tokens.values()]) if (c.parent === token) this.revokeToken(c.id);
    for (const e of this.leases.values()) if (e.creator === token) e.revoked = true;
  }

  /** Vault's expiration manager: a token past its expiry is revoked, with its children and leases. */
  private expireTokens(): void {
    const now = this.now();
    for (const t of [...this.tokens.values()]) {
      if (t.expireAtMs !== null && now >= t.expireAtMs && this.tokens.has(t.id)) this.revokeToken(t.id);
    }
  }

  /** A live (known, unexpired) token entry. */
  private liveToken(token: string): TokenEntry | undefined {
    const t = this.tokens.get(token);
    if (!t) return undefined;
    if (t.expireAtMs !== null && this.now() >= t.expireAtMs) return undefined;
    return t;
  }

  private remainingTtl(t: TokenEntry): number {
    if (t.expireAtMs === null) return 0;
    return Math.max(0, Math.round((t.expireAtMs - this.now()) / 1000));
  }

  tokenInfo(token: string): { ttl: number; renewable: boolean; policies: string[]; accessor: string } | undefined {
    this.expireTokens();
    const t = this.liveToken(token);
    if (!t) return undefined;
    return { ttl: this.remainingTtl(t), renewable: t.renewable, policies: [...t.policies], accessor: t.accessor };
  }

  // --- AppRole --------------------------------------------------------------------------------

  private approleMount(mount = "approle", create = false): Mount {
    const p = `auth/${normMount(mount)}`;
    let m = this.mounts.get(p);
    if (!m && create) m = this.addMount(p, "approle", "approle", "");
    if (!m || m.kind !== "approle") throw new Error(`no approle mount at ${p}`);
    return m;
  }

  addAppRole(opts: AppRoleOptions): { roleId: string } {
    const m = this.approleMount(opts.mount, true);
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

  private newSecretId(role: AppRole, o: { ttl?: number; numUses?: number; metadata?: Record<string, string> } = {}): SecretIdEntry {
    const created = this.stamp();
    const ttl = o.ttl ?? role.secretIdTtl;
    const numUses = o.numUses ?? role.secretIdNumUses;
    const e: SecretIdEntry = {
      secretId: randomUUID(),
      accessor: randomUUID(),
      created,
      ttl,
      numUses,
      usesLeft: numUses,
      expireAtMs: ttl > 0 ? created.ms + ttl * 1000 : null,
      metadata: o.metadata ?? {},
    };
    role.secretIds.set(e.secretId, e);
    return e;
  }

  private secretIdEnv(e: SecretIdEntry): Env {
    return {
      data: { secret_id: e.secretId, secret_id_accessor: e.accessor, secret_id_num_uses: e.numUses, secret_id_ttl: e.ttl },
      mountType: "approle",
    };
  }

  generateSecretId(
    roleName: string,
    opts: { mount?: string; wrapTtl?: number } = {},
  ): { secretId: string; accessor: string } | { wrappingToken: string; accessor: string } {
    const m = this.approleMount(opts.mount);
    const role = m.roles.get(roleName);
    if (!role) throw new Error(`no role ${roleName} on ${m.path}`);
    const e = this.newSecretId(role);
    if (opts.wrapTtl && opts.wrapTtl > 0) {
      const w = this.createWrap(this.secretIdEnv(e), opts.wrapTtl, `${m.path}role/${roleName}/secret-id`);
      return { wrappingToken: w.token, accessor: e.accessor };
    }
    return { secretId: e.secretId, accessor: e.accessor };
  }

  /** Live (unexpired, not used up) secret-ids of a role. */
  secretIdCount(roleName: string, mount?: string): number {
    const role = this.approleMount(mount).roles.get(roleName);
    if (!role) throw new Error(`no role ${roleName}`);
    return [...role.secretIds.values()].filter((e) => this.secretIdLive(e)).length;
  }

  private secretIdLive(e: SecretIdEntry): boolean {
    return e.expireAtMs === null || this.now() < e.expireAtMs;
  }

  // --- PKI ------------------------------------------------------------------------------------

  /** Mounts a PKI engine with a real root CA and an intermediate CA that signs the leaves. */
  mountPki(path: string, opts: PkiMountOptions = {}): void {
    const p = normMount(path);
    const m = this.addMount(p, "pki", "pki", "PKI secrets engine");
    m.pki = {
      ca: createCaHierarchy(trimSlashes(p), this.now()),
      issuerId: randomUUID(),
      defaultTtl: opts.ttl ?? 0,
      maxTtl: opts.maxTtl ?? 0,
      roles: new Map(),
      issued: [],
      mismatch: false,
    };
  }

  private pkiState(mount: string): PkiState {
    const st = this.mounts.get(normMount(mount))?.pki;
    if (!st) throw new Error(`no PKI mount at ${mount}`);
    return st;
  }

  addPkiRole(mount: string, role: string, opts: PkiRoleOptions = {}): void {
    const st = this.pkiState(mount);
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
    this.keyPool.warm(spec.type, spec.bits);
  }

  /** Certificates issued so far on a PKI mount, oldest first. Count issue calls with `countRequests`. */
  pkiIssued(mount: string): PkiIssuedCert[] {
    return this.pkiState(mount).issued.map((c) => ({ ...c }));
  }

  /** While on, issue responses carry a private key that does not match the certificate. */
  setPkiMismatch(mount: string, on: boolean): void {
    this.pkiState(mount).mismatch = on;
  }

  pkiCaChain(mount: string): { root: string; intermediate: string } {
    const { ca } = this.pkiState(mount);
    return { root: `${ca.root.pem}\n`, intermediate: `${ca.intermediate.pem}\n` };
  }

  // --- database engine and leases -------------------------------------------------------------

  mountDatabase(path: string): void {
    const m = this.addMount(normMount(path), "database", "database", "database secrets engine");
    m.dbRoles = new Map();
  }

  addDbRole(mount: string, role: string, opts: DbRoleOptions): void {
    const roles = this.mounts.get(normMount(mount))?.dbRoles;
    if (!roles) throw new Error(`no database mount at ${mount}`);
    if (opts.maxTtl > 0 && opts.defaultTtl > opts.maxTtl) throw new Error("default_ttl cannot be greater than max_ttl");
    roles.set(role, { defaultTtl: opts.defaultTtl, maxTtl: opts.maxTtl, renewable: opts.renewable ?? true });
  }

  private leaseLive(e: LeaseEntry): boolean {
    return !e.revoked && this.now() < e.expireAtMs;
  }

  leaseInfo(leaseId: string): LeaseInfo | undefined {
    this.expireTokens();
    const e = this.leases.get(leaseId);
    if (!e) return undefined;
    return {
      expiresAt: e.expireAtMs,
      renewable: e.renewable,
      revoked: e.revoked,
      tokenAccessor: e.creatorAccessor,
      expired: this.now() >= e.expireAtMs,
      username: e.username,
      issuedAt: e.issue.ms,
      maxExpiresAt: e.maxExpireAtMs,
    };
  }

  /** Ids of leases that are neither revoked nor expired, optionally only those under `mount`. */
  activeLeases(mount?: string): string[] {
    this.expireTokens();
    const prefix = mount === undefined ? "" : normMount(mount);
    return [...this.leases.values()].filter((e) => this.leaseLive(e) && e.id.startsWith(prefix)).map((e) => e.id);
  }

  /** Revokes a lease as `sys/leases/revoke` does; false when the lease is unknown. */
  revokeLease(leaseId: string): boolean {
    const e = this.leases.get(leaseId);
    if (!e) return false;
    e.revoked = true;
    return true;
  }

  /** Whether a username/password pair from `<mount>/creds/<role>` would still log in to the database. */
  dbCredentialValid(username: string, password: string): boolean {
    this.expireTokens();
    return [...this.leases.values()].some((e) => e.username === username && e.password === password && e.username !== "" && this.leaseLive(e));
  }

  // --- state and faults -----------------------------------------------------------------------

  seal(): void {
    this.sealed = true;
  }
  unseal(): void {
    this.sealed = false;
  }
  setInitialized(v: boolean): void {
    this.initialized = v;
  }
  setStandby(v: boolean): void {
    this.standby = v;
  }

  addFault(f: Fault): () => void {
    const entry = { f, remaining: f.times ?? Infinity };
    this.faults.push(entry);
    return () => {
      this.faults = this.faults.filter((x) => x !== entry);
    };
  }

  clearFaults(): void {
    this.faults = [];
  }

  setLatency(ms: number): void {
    this.latencyMs = Math.max(0, ms);
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

  private takeFault(method: string, path: string): Fault | undefined {
    for (const e of this.faults) {
      if (e.remaining <= 0) continue;
      if (e.f.method && e.f.method.toUpperCase() !== method) continue;
      if (e.f.path !== undefined) {
        if (typeof e.f.path === "string") {
          if (e.f.path !== path) continue;
        } else {
          e.f.path.lastIndex = 0;
          if (!e.f.path.test(path)) continue;
        }
      }
      e.remaining--;
      if (e.remaining <= 0) this.faults = this.faults.filter((x) => x !== e);
      return e.f;
    }
    return undefined;
  }

  // --- HTTP plumbing --------------------------------------------------------------------------

  private async readBody(req: http.IncomingMessage): Promise<{ buf: Buffer; tooLarge: boolean }> {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BODY) {
        tooLarge = true;
        chunks.length = 0;
      } else if (!tooLarge) chunks.push(chunk);
    }
    return { buf: Buffer.concat(chunks), tooLarge };
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = (req.method ?? "GET").toUpperCase();
    const url = new URL(req.url ?? "/", "http://double.invalid");
    const hasV1 = url.pathname.startsWith("/v1/");
    let path = hasV1 ? url.pathname.slice(4) : url.pathname.replace(/^\/+/, "");
    try {
      path = decodeURIComponent(path);
    } catch {
      // keep the raw path
    }
    const query: Record<string, string> = {};
    for (const [k, v] of url.searchParams) if (!(k in query)) query[k] = v;
    const headerToken = tokenFromHeaders(req.headers);
    const entry: RequestLogEntry = {
      time: this.now(),
      method,
      path,
      query,
      status: 0,
      tokenAccessor: this.accessorOf(headerToken),
      wrapped: false,
    };
    this.requests.push(entry);

    const { buf, tooLarge } = await this.readBody(req);

    const fault = this.takeFault(method, path);
    let extraHeaders: Record<string, string> | undefined;
    if (fault) {
      if (fault.latencyMs) await sleep(fault.latencyMs);
      if (fault.drop) {
        await this.globalLatency();
        req.socket.destroy();
        return;
      }
      if (fault.hang) return; // socket stays open until the client gives up or close()
      const faultResult = this.faultResult(fault, path, url);
      if (faultResult) {
        await this.send(req, res, faultResult, entry, fault.headers);
        return;
      }
      extraHeaders = fault.headers;
    }

    let result: Result;
    const wrap: { ttl?: number } = {};
    if (tooLarge) result = err(413, "http: request body too large");
    else result = await this.dispatch(req, method, path, url.searchParams, buf, headerToken, hasV1, wrap);

    // response wrapping
    const wrapTtl = wrap.ttl;
    if (wrapTtl && result.t === "env" && !result.raw && (result.status ?? 200) === 200) {
      const creationPath = path;
      const w = this.createWrap(result.env, wrapTtl, creationPath, result.wrappedAccessor);
      result = ok(this.wrapEnv(w));
      entry.wrapped = true;
    }
    if (fault?.dropAfter) {
      // Processed, but the answer never leaves: the client sees a reset after sending.
      await this.globalLatency();
      req.socket.destroy();
      return;
    }
    await this.send(req, res, result, entry, extraHeaders);
  }

  private accessorOf(token: string): string | null {
    if (!token) return null;
    const t = this.tokens.get(token);
    if (t) return t.accessor;
    const w = this.wraps.get(token);
    if (w) return w.accessor;
    return this.deadTokenAccessors.get(token) ?? null;
  }

  private async globalLatency(): Promise<void> {
    if (this.latencyMs > 0) await sleep(this.latencyMs);
  }

  private faultResult(f: Fault, path: string, url: URL): Result | undefined {
    if (f.malformed) {
      const full = goJson({ request_id: randomUUID(), lease_id: "", renewable: false, lease_duration: 0, data: { value: "x".repeat(32) } });
      return { t: "bytes", status: 200, body: full.slice(0, Math.floor(full.length / 2)), contentType: f.contentType ?? "application/json" };
    }
    if (f.html) {
      const body =
        "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
      return { t: "bytes", status: f.status ?? 502, body: f.body ?? body, contentType: f.contentType ?? "text/html" };
    }
    if (f.redirectTo) {
      const loc = `${f.redirectTo.replace(/\/+$/, "")}${url.pathname}${url.search}`;
      return { t: "bytes", status: f.redirectStatus ?? 307, body: "", headers: { Location: loc }, contentType: f.contentType };
    }
    if (f.status !== undefined || f.body !== undefined) {
      const status = f.status ?? 200;
      return { t: "bytes", status, body: f.body ?? defaultErrorBody(status, path), contentType: f.contentType ?? "application/json" };
    }
    return undefined;
  }

  private async send(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    result: Result,
    entry: RequestLogEntry,
    extraHeaders?: Record<string, string>,
  ): Promise<void> {
    await this.globalLatency();
    if (res.destroyed || res.writableEnded) return;
    let body = "";
    let contentType: string | undefined = "application/json";
    const headers: Record<string, string> = { "Cache-Control": "no-store" };
    switch (result.t) {
      case "env": {
        const json = goJson(this.envelopeJson(result.env));
        body = result.raw ? json : `${json}\n`;
        break;
      }
      case "err":
        body = `${goJson({ errors: result.errors })}\n`;
        break;
      case "empty":
        break;
      case "bytes":
        body = result.body;
        contentType = result.contentType ?? (result.status >= 300 && result.status < 400 ? undefined : "application/json");
        Object.assign(headers, result.headers);
        break;
    }
    if (contentType) headers["Content-Type"] = contentType;
    if (this.opts.tls) headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains";
    if (extraHeaders) Object.assign(headers, extraHeaders);
    const status = result.t === "env" ? (result.status ?? 200) : result.status;
    const noBody = req.method === "HEAD" || status === 204 || status === 304;
    if (!noBody) headers["Content-Length"] = String(Buffer.byteLength(body));
    entry.status = status;
    try {
      res.writeHead(status, headers);
    } catch {
      entry.status = 500;
      res.writeHead(500, { "Cache-Control": "no-store", "Content-Type": "application/json" });
      res.end(`${goJson({ errors: [] })}\n`);
      return;
    }
    res.end(noBody ? undefined : body);
  }

  private envelopeJson(e: Env): Obj {
    return {
      request_id: e.requestId ?? randomUUID(),
      lease_id: e.leaseId ?? "",
      renewable: e.renewable ?? false,
      lease_duration: e.leaseDuration ?? 0,
      data: sortDeep(e.data ?? null),
      wrap_info: e.wrapInfo ?? null,
      warnings: e.warnings ?? null,
      auth: e.auth ?? null,
      mount_type: e.mountType,
    };
  }

  // --- wrapping -------------------------------------------------------------------------------

  private createWrap(env: Env, ttl: number, creationPath: string, wrappedAccessor?: string): WrapEntry {
    const created = this.stamp();
    const w: WrapEntry = {
      token: `hvs.${randomBase62(24)}`,
      accessor: randomBase62(24),
      ttl,
      created,
      creationPath,
      env: { ...clone(env), requestId: undefined },
      expireAtMs: created.ms + ttl * 1000,
      wrappedAccessor,
    };
    this.wraps.set(w.token, w);
    return w;
  }

  private wrapEnv(w: WrapEntry): Env {
    const info: WrapInfo = {
      token: w.token,
      accessor: w.accessor,
      ttl: w.ttl,
      creation_time: fmtTime(w.created),
      creation_path: w.creationPath,
    };
    if (w.wrappedAccessor) info.wrapped_accessor = w.wrappedAccessor;
    return { requestId: "", data: null, wrapInfo: info, mountType: "" };
  }

  private liveWrap(token: string): WrapEntry | undefined {
    const w = this.wraps.get(token);
    if (!w) return undefined;
    if (this.now() >= w.expireAtMs) {
      this.wraps.delete(token);
      this.deadTokenAccessors.set(token, w.accessor);
      return undefined;
    }
    return w;
  }

  private consumeWrap(token: string): WrapEntry | undefined {
    const w = this.liveWrap(token);
    if (w) {
      this.wraps.delete(token);
      this.deadTokenAccessors.set(token, w.accessor);
    }
    return w;
  }

  // --- request dispatch -----------------------------------------------------------------------

  private dispatch(
    req: http.IncomingMessage,
    method: string,
    rawPath: string,
    query: URLSearchParams,
    buf: Buffer,
    headerToken: string,
    hasV1: boolean,
    wrap: { ttl?: number },
  ): Result | Promise<Result> {
    if (!hasV1) return NOT_FOUND;
    this.expireTokens();
    if (!["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"].includes(method)) return err(405);
    if (rawPath === "sys/health") return this.health(method, query);
    // A standby forwards before the request is parsed; this double has nobody to forward to.
    if (this.standby && this.initialized && !this.sealed) return err(503, "node is not active");
    if (method === "HEAD" || method === "OPTIONS") return err(405);

    // Operation (http/logical.go buildLogicalRequestNoAuth)
    let op: Op;
    let path = rawPath;
    if (method === "GET") {
      op = "read";
      const listRaw = query.get("list");
      if (listRaw !== null && listRaw !== "") {
        const b = parseGoBool(listRaw);
        if (b === undefined) return err(400);
        if (b) {
          op = "list";
          if (!path.endsWith("/")) path += "/";
        }
      }
    } else if (method === "DELETE") op = "delete";
    else if (method === "PATCH") {
      op = "patch";
      const ct = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
      if (ct !== "application/merge-patch+json") {
        return err(415, `PATCH requires Content-Type of application/merge-patch+json, provided ${ct}`);
      }
    } else op = "write";

    // Body
    let body: Obj = {};
    if (op === "write" || op === "patch") {
      const text = buf.toString("utf8");
      if (text.trim() !== "") {
        const ct = (req.headers["content-type"] ?? "").toLowerCase();
        const first = text.trimStart()[0];
        if (ct.startsWith("application/x-www-form-urlencoded") && first !== "{" && first !== "[") {
          body = Object.fromEntries(new URLSearchParams(text));
        } else {
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            return err(400, "error parsing JSON");
          }
          if (parsed === null) parsed = {};
          if (!isObj(parsed)) return err(400, "error parsing JSON");
          body = parsed;
        }
      }
    } else if (op === "read" || op === "delete") {
      for (const [k, v] of query) if (k !== "list" && !(k in body)) body[k] = v;
    }

    // X-Vault-Wrap-TTL
    const wrapHeader = req.headers["x-vault-wrap-ttl"];
    if (typeof wrapHeader === "string" && wrapHeader !== "") {
      let ttl: number;
      try {
        ttl = parseDurationSecond(wrapHeader);
      } catch (e) {
        return err(400, `error parsing X-Vault-Wrap-TTL header: ${(e as Error).message}`);
      }
      if (ttl < 0) return err(400, "error parsing X-Vault-Wrap-TTL header: requested wrap ttl cannot be negative");
      if (ttl > 0 && !path.startsWith("sys/wrapping/")) wrap.ttl = ttl;
    }

    // The request is built (and may fail with 400/415) before core sees it and reports the seal.
    if (this.sealed || !this.initialized) return err(503, "Vault is sealed");

    const ctx: Ctx = { method, path, op, query, body, headerToken, token: null };

    // Unauthenticated endpoints: a stale or bad token is ignored.
    const mount = this.findMount(path);
    if (mount?.kind === "approle" && path === `${mount.path}login`) return this.approleLogin(ctx, mount);
    if (path === "sys/wrapping/lookup") return this.wrappingLookup(ctx);
    if (path === "sys/wrapping/unwrap") return this.unwrap(ctx);

    // Authentication
    if (!headerToken) return err(403, PERMISSION_DENIED);
    if (this.liveWrap(headerToken)) return err(403, ME_PERMISSION_DENIED);
    const tok = this.liveToken(headerToken);
    if (!tok) return err(403, ME_INVALID_TOKEN);
    this.useToken(tok);
    ctx.token = tok;

    // The KV preflight does its own capability check.
    if (path === "sys/internal/ui/mounts" || path.startsWith("sys/internal/ui/mounts/")) return this.preflight(ctx);

    // Authorization
    if (!tok.isRoot) {
      let cap: Capability;
      if (op === "write") cap = this.exists(path, mount) ? "update" : "create";
      else cap = op;
      const acl = this.aclFor(tok.policies);
      // PKI issue has no existence check; either write capability is accepted for it.
      const pkiAlt = mount?.kind === "pki" && op === "write" && acl.allows(path, cap === "update" ? "create" : "update");
      if (!acl.allows(path, cap, op === "list") && !pkiAlt) return err(403, ME_PERMISSION_DENIED);
    }

    // setGeneric fixtures take precedence over any mount.
    const gen = this.generic.get(trimSlashes(path));
    if (gen && op !== "list") return this.genericOp(ctx, trimSlashes(path), gen, mount);
    if (!mount) return err(404, `no handler for route "${path}". route entry not found.`);
    const rest = path.slice(mount.path.length);
    switch (mount.kind) {
      case "kv1":
        return this.kv1(ctx, mount, rest);
      case "kv2":
        return this.kv2(ctx, mount, rest);
      case "approle":
        return this.approle(ctx, mount, rest);
      case "token":
        return this.tokenBackend(ctx, rest);
      case "system":
        return this.sys(ctx, rest);
      case "pki":
        return this.pki(ctx, mount, rest);
      case "database":
        return this.database(ctx, mount, rest);
      case "generic":
      case "cubbyhole":
      case "identity":
        return this.genericMount(ctx, mount, rest);
    }
  }

  private useToken(tok: TokenEntry): void {
    if (tok.numUses > 0) {
      tok.numUses--;
      if (tok.numUses === 0) this.revokeToken(tok.id);
    }
  }

  /** Vault's existence check, deciding between create and update for POST/PUT. */
  private exists(path: string, mount: Mount | undefined): boolean {
    const p = trimSlashes(path);
    if (this.generic.has(p)) return true;
    if (!mount) return false;
    const rest = path.slice(mount.path.length);
    if (mount.kind === "kv1") return mount.kv1.has(trimSlashes(rest));
    if (mount.kind === "kv2") {
      const m = /^(data|metadata)\/(.+)$/.exec(rest);
      if (m) return mount.kv2.has(trimSlashes(m[2] as string));
      return true;
    }
    return true;
  }

  // --- sys/health -----------------------------------------------------------------------------

  private health(method: string, query: URLSearchParams): Result {
    if (method !== "GET" && method !== "HEAD") return err(405);
    const bools: Record<string, boolean> = { standbyok: false, perfstandbyok: false };
    for (const k of Object.keys(bools)) {
      const v = query.get(k);
      if (v !== null) {
        const b = parseGoBool(v);
        if (b === undefined) return err(400);
        bools[k] = b;
      }
    }
    const codes: Record<string, number> = {
      activecode: 200,
      standbycode: 429,
      drsecondarycode: 472,
      performancestandbycode: 473,
      sealedcode: 503,
      uninitcode: 501,
      haunhealthycode: 474,
      removedcode: 530,
    };
    for (const k of Object.keys(codes)) {
      const v = query.get(k);
      if (v !== null) {
        const n = parseGoInt(v);
        if (n === undefined) return err(400);
        codes[k] = n;
      }
    }
    let status: number;
    if (!this.initialized) status = codes["uninitcode"] as number;
    else if (this.sealed) status = codes["sealedcode"] as number;
    else if (this.standby && !bools["standbyok"]) status = codes["standbycode"] as number;
    else status = codes["activecode"] as number;

    const sealedLike = this.sealed || !this.initialized;
    const body: Obj = {
      initialized: this.initialized,
      sealed: sealedLike,
      standby: sealedLike ? true : this.standby,
      performance_standby: false,
      replication_performance_mode: sealedLike ? "unknown" : "disabled",
      replication_dr_mode: sealedLike ? "unknown" : "disabled",
      server_time_utc: Math.floor(this.now() / 1000),
      version: this.versionString,
      enterprise: false,
    };
    if (!sealedLike) {
      body["cluster_name"] = this.clusterName;
      body["cluster_id"] = this.clusterId;
    }
    body["echo_duration_ms"] = 0;
    body["clock_skew_ms"] = 0;
    body["replication_primary_canary_age_ms"] = 0;
    return { t: "bytes", status, body: method === "HEAD" ? "" : `${goJson(body)}\n` };
  }

  // --- sys ------------------------------------------------------------------------------------

  private sys(ctx: Ctx, rest: string): Result {
    const { op, body } = ctx;
    if (rest.startsWith("policies/acl/") || rest.startsWith("policy/")) {
      const name = trimSlashes(rest.replace(/^policies\/acl\/|^policy\//, ""));
      if (op === "read") {
        const p = this.policyText.get(name) ?? (name === "default" ? DEFAULT_POLICY_HCL : undefined);
        if (p === undefined) return NOT_FOUND;
        return ok({ data: { name, policy: p, rules: p }, mountType: "system" });
      }
      if (op === "write") {
        const text = weakString(body["policy"] ?? body["rules"]);
        try {
          this.addPolicy(name, text);
        } catch (e) {
          return err(400, `failed to parse policy: ${(e as Error).message}`);
        }
        this.policyText.set(name, text);
        return NO_CONTENT;
      }
      if (op === "delete") {
        this.policies.delete(name);
        this.policyText.delete(name);
        this.aclCache.clear();
        return NO_CONTENT;
      }
      return err(405, ME_UNSUPPORTED_OP);
    }
    if (/^(leases\/)?revoke-(prefix|force)(\/|$)/.test(rest)) {
      if (op !== "write") return err(405, ME_UNSUPPORTED_OP);
      const prefix = rest.replace(/^(leases\/)?revoke-(prefix|force)\/?/, "");
      if (!prefix) return err(400, "prefix must be specified");
      for (const e of this.leases.values()) if (e.id.startsWith(prefix)) e.revoked = true;
      for (const [p, g] of this.generic) if (g.opts.leaseId?.startsWith(prefix)) this.generic.delete(p);
      return NO_CONTENT;
    }
    if (rest === "leases/revoke" || rest.startsWith("leases/revoke/") || rest === "revoke" || rest.startsWith("revoke/")) {
      if (op !== "write") return err(405, ME_UNSUPPORTED_OP);
      const leaseId = weakString(body["lease_id"]) || rest.replace(/^(leases\/)?revoke\/?/, "");
      if (!leaseId) return err(400, "lease_id must be specified");
      const e = this.leases.get(leaseId);
      if (e) e.revoked = true;
      for (const [p, g] of this.generic) if (g.opts.leaseId === leaseId) this.generic.delete(p);
      const sync = body["sync"];
      if (sync === false || sync === "false") return { t: "empty", status: 202 };
      return NO_CONTENT;
    }
    if (rest === "leases/renew" || rest.startsWith("leases/renew/") || rest === "renew" || rest.startsWith("renew/")) {
      if (op !== "write") return err(405, ME_UNSUPPORTED_OP);
      const leaseId = weakString(body["lease_id"]) || rest.replace(/^(leases\/)?renew\/?/, "");
      if (!leaseId) return err(400, "lease_id must be specified");
      if (this.tokens.has(leaseId)) return err(400, "tokens cannot be renewed through this endpoint");
      let inc = 0;
      if (body["increment"] !== undefined && body["increment"] !== null && body["increment"] !== "") {
        try {
          inc = parseDurationSecond(body["increment"]);
        } catch (e) {
          return err(400, `error converting input for field "increment": ${(e as Error).message}`);
        }
      }
      const e = this.leases.get(leaseId);
      if (e) return this.renewLease(e, inc);
      const g = [...this.generic.values()].find((x) => x.opts.leaseId === leaseId);
      if (!g) return err(400, "lease not found");
      if (!g.opts.renewable) return err(400, "lease is not renewable");
      return ok({ leaseId, renewable: true, leaseDuration: inc || (g.opts.leaseDuration ?? 0), data: null, mountType: "system" });
    }
    if (rest === "leases/lookup" || rest.startsWith("leases/lookup/")) {
      if (op === "list") {
        const prefix = rest.replace(/^leases\/lookup\/?/, "");
        const keys = listKeys(
          [...this.leases.values()].filter((e) => this.leaseLive(e)).map((e) => e.id),
          prefix,
        );
        return keys.length ? ok({ data: { keys }, mountType: "system" }) : NOT_FOUND;
      }
      if (op !== "write") return err(405, ME_UNSUPPORTED_OP);
      const leaseId = weakString(body["lease_id"]);
      if (!leaseId) return err(400, "lease_id must be specified");
      const e = this.leases.get(leaseId);
      if (!e || !this.leaseLive(e)) return err(400, "invalid lease");
      return ok({
        data: {
          expire_time: fmtTime({ ms: e.expireAtMs, ns: e.issue.ns }),
          id: e.id,
          issue_time: fmtTime(e.issue),
          last_renewal: e.lastRenewal ? fmtTime(e.lastRenewal) : null,
          renewable: e.renewable,
          ttl: Math.max(0, Math.round((e.expireAtMs - this.now()) / 1000)),
        },
        mountType: "system",
      });
    }
    return err(404, ME_UNSUPPORTED_PATH);
  }

  /** GET sys/internal/ui/mounts/<path>: the KV preflight. */
  private preflight(ctx: Ctx): Result {
    if (ctx.op !== "read") return err(405, ME_UNSUPPORTED_OP);
    const tok = ctx.token as TokenEntry;
    const acl = tok.isRoot ? undefined : this.aclFor(tok.policies);
    const raw = ctx.path.replace(/^sys\/internal\/ui\/mounts\/?/, "");
    const sanitized = trimSlashes(raw);
    if (sanitized === "") {
      const secret: Obj = {};
      const auth: Obj = {};
      for (const m of this.mounts.values()) {
        if (acl && !acl.hasAnyAccessUnder(m.path)) continue;
        if (m.path.startsWith("auth/")) auth[m.path.slice(5)] = this.mountInfo(m, false);
        else secret[m.path] = this.mountInfo(m, false);
      }
      return ok({ data: { auth, secret }, mountType: "system" });
    }
    const m = this.findMount(sanitized);
    if (!m || (acl && !acl.hasAnyAccessUnder(m.path))) {
      return err(
        403,
        `preflight capability check returned 403, please ensure client's policies grant access to path "${sanitized}/"`,
      );
    }
    return ok({ data: this.mountInfo(m, true), mountType: "system" });
  }

  private mountInfo(m: Mount, withPath: boolean): Obj {
    const info: Obj = {
      accessor: m.accessor,
      config: { default_lease_ttl: 0, force_no_cache: false, max_lease_ttl: 0 },
      description: m.description,
      external_entropy_access: false,
      local: m.kind === "cubbyhole",
      options: m.options ? { ...m.options } : null,
      plugin_version: "",
      running_plugin_version: m.runningVersion,
      running_sha256: "",
      seal_wrap: false,
      type: m.type,
      uuid: m.uuid,
    };
    if (withPath) info["path"] = m.path;
    return info;
  }

  // --- wrapping endpoints ---------------------------------------------------------------------

  private unwrap(ctx: Ctx): Result {
    const bodyToken = weakString(ctx.body["token"]);
    const header = ctx.headerToken;
    if (!header) return err(403, PERMISSION_DENIED);
    if (ctx.op !== "write") {
      if (this.liveWrap(header) || this.liveToken(header)) return err(405, ME_UNSUPPORTED_OP);
      return err(403, ME_INVALID_TOKEN);
    }
    const headerWrap = this.liveWrap(header);
    if (headerWrap) {
      // The wrapping token authenticates the call and is used up by that.
      this.consumeWrap(header);
      if (!bodyToken) return this.unwrapResult(headerWrap);
      if (bodyToken === header) return err(400, INVALID_WRAPPING_TOKEN);
      const w = this.consumeWrap(bodyToken);
      return w ? this.unwrapResult(w) : err(400, INVALID_WRAPPING_TOKEN);
    }
    const tok = this.liveToken(header);
    if (!tok) {
      // Form A with a used, expired or unknown wrapping token.
      if (!bodyToken) return err(400, INVALID_WRAPPING_TOKEN);
      return err(403, ME_INVALID_TOKEN);
    }
    this.useToken(tok);
    if (!tok.isRoot && !this.aclFor(tok.policies).allows("sys/wrapping/unwrap", "update")) return err(403, ME_PERMISSION_DENIED);
    if (!bodyToken) return err(400, INVALID_WRAPPING_TOKEN);
    const w = this.consumeWrap(bodyToken);
    return w ? this.unwrapResult(w) : err(400, INVALID_WRAPPING_TOKEN);
  }

  private unwrapResult(w: WrapEntry): Result {
    const env = clone(w.env);
    delete env.requestId;
    return ok(env);
  }

  private wrappingLookup(ctx: Ctx): Result {
    if (ctx.op !== "write" && ctx.op !== "read") return err(405, ME_UNSUPPORTED_OP);
    const token = weakString(ctx.body["token"]);
    if (!token) return err(400, `missing "token" value in input`);
    const w = this.liveWrap(token);
    if (!w) return err(400, INVALID_WRAPPING_TOKEN);
    return ok({
      data: { creation_path: w.creationPath, creation_time: fmtTime(w.created), creation_ttl: w.ttl },
      mountType: "system",
    });
  }

  // --- token backend --------------------------------------------------------------------------

  private authBlock(t: TokenEntry, leaseDuration: number): Obj {
    const a: Obj = {
      client_token: t.id,
      accessor: t.accessor,
      policies: [...t.policies],
    };
    if (t.policies.length > 0) a["token_policies"] = [...t.policies];
    a["metadata"] = t.meta ? sortDeep(t.meta) : null;
    a["lease_duration"] = leaseDuration;
    a["renewable"] = t.renewable;
    a["entity_id"] = t.entityId;
    a["token_type"] = t.type;
    a["orphan"] = t.orphan;
    a["mfa_requirement"] = null;
    a["num_uses"] = t.numUses;
    return a;
  }

  private lookupData(t: TokenEntry): Obj {
    const d: Obj = {
      accessor: t.accessor,
      creation_time: Math.floor(t.issue.ms / 1000),
      creation_ttl: t.creationTtl,
      display_name: t.displayName,
      entity_id: t.entityId,
      expire_time: t.expireAtMs === null ? null : fmtTime({ ms: t.expireAtMs, ns: t.issue.ns }),
      explicit_max_ttl: t.explicitMaxTtl,
      id: t.id,
      issue_time: fmtTime(t.issue),
      meta: t.meta ? { ...t.meta } : null,
      num_uses: t.numUses,
      orphan: t.orphan,
      path: t.path,
      policies: [...t.policies],
      renewable: t.renewable,
      ttl: this.remainingTtl(t),
      type: t.type,
    };
    if (t.period > 0) d["period"] = t.period;
    if (t.lastRenewal) {
      d["last_renewal"] = fmtTime(t.lastRenewal);
      d["last_renewal_time"] = Math.floor(t.lastRenewal.ms / 1000);
    }
    return d;
  }

  private tokenBackend(ctx: Ctx, rest: string): Result {
    const tok = ctx.token as TokenEntry;
    const { op, body } = ctx;
    switch (trimSlashes(rest)) {
      case "lookup-self":
        if (op !== "read" && op !== "write") return err(405, ME_UNSUPPORTED_OP);
        return ok({ data: this.lookupData(tok), mountType: "token" });
      case "lookup": {
        if (op !== "read" && op !== "write") return err(405, ME_UNSUPPORTED_OP);
        const other = weakString(body["token"]);
        if (!other) return err(400, "missing token");
        const t = this.liveToken(other);
        if (!t) return err(403, ME_INVALID_TOKEN);
        return ok({ data: this.lookupData(t), mountType: "token" });
      }
      case "renew-self":
        if (op !== "write") return err(405, ME_UNSUPPORTED_OP);
        return this.renewToken(tok, body);
      case "renew": {
        if (op !== "write") return err(405, ME_UNSUPPORTED_OP);
        const t = this.liveToken(weakString(body["token"]));
        if (!t) return err(400, "lease not found");
        return this.renewToken(t, body);
      }
      case "revoke-self":
        if (op !== "write") return err(405, ME_UNSUPPORTED_OP);
        this.revokeToken(tok.id);
        return NO_CONTENT;
      case "revoke":
        if (op !== "write") return err(405, ME_UNSUPPORTED_OP);
        this.revokeToken(weakString(body["token"]));
        return NO_CONTENT;
      case "create":
      case "create-orphan": {
        if (op !== "write") return err(405, ME_UNSUPPORTED_OP);
        let ttl = 0;
        let maxTtl = 0;
        try {
          if (body["ttl"] !== undefined) ttl = parseDurationSecond(body["ttl"]);
          if (body["explicit_max_ttl"] !== undefined) maxTtl = parseDurationSecond(body["explicit_max_ttl"]);
        } catch (e) {
          return err(400, (e as Error).message);
        }
        let policies = Array.isArray(body["policies"]) ? (body["policies"] as unknown[]).map(weakString) : [...tok.policies];
        if (body["no_default_policy"] === true) policies = policies.filter((p) => p !== "default");
        const isRootChild = policies.includes("root");
        const meta = isObj(body["meta"]) ? (Object.fromEntries(Object.entries(body["meta"]).map(([k, v]) => [k, weakString(v)])) as Record<string, string>) : null;
        const dn = weakString(body["display_name"]);
        const t = this.newToken({
          policies,
          ttl: isRootChild && body["ttl"] === undefined ? 0 : ttl,
          maxTtl,
          explicitMaxTtl: maxTtl,
          path: "auth/token/create",
          displayName: dn ? `token-${dn}` : "token",
          orphan: trimSlashes(rest) === "create-orphan" || body["no_parent"] === true,
          renewable: body["renewable"] !== false,
          meta,
          type: body["type"] === "batch" ? "batch" : "service",
          numUses: weakInt(body["num_uses"]) ?? 0,
          parent: trimSlashes(rest) === "create-orphan" || body["no_parent"] === true ? null : tok.id,
        });
        if (body["no_default_policy"] === true && !isRootChild) {
          t.policies = t.policies.filter((p) => p !== "default");
          if (t.policies.length === 0) t.policies = ["default"];
        }
        return ok({ data: null, auth: this.authBlock(t, this.remainingTtl(t)), mountType: "token" }, { wrappedAccessor: t.accessor || undefined });
      }
      default:
        return err(404, ME_UNSUPPORTED_PATH);
    }
  }

  private renewToken(t: TokenEntry, body: Obj): Result {
    if (!t.renewable || t.expireAtMs === null || t.type === "batch") return err(400, "lease is not renewable");
    let inc = 0;
    if (body["increment"] !== undefined && body["increment"] !== null && body["increment"] !== "") {
      try {
        inc = parseDurationSecond(body["increment"]);
      } catch (e) {
        return err(400, `error converting input for field "increment": ${(e as Error).message}`);
      }
    }
    if (inc <= 0) inc = t.creationTtl;
    // A periodic token is renewed to its period, whatever the increment (CalculateTTL).
    if (t.period > 0) inc = t.period;
    const now = this.now();
    let ttl = inc;
    let warnings: string[] | null = null;
    if (t.maxExpireAtMs !== null) {
      const left = Math.max(0, Math.round((t.maxExpireAtMs - now) / 1000));
      if (ttl > left) {
        warnings = [`TTL of "${goDuration(inc)}" exceeded the effective max_ttl of "${goDuration(left)}"; TTL value is capped accordingly`];
        ttl = left;
      }
    }
    t.expireAtMs = now + ttl * 1000;
    t.lastRenewal = this.stamp();
    return ok({ data: null, warnings, auth: this.authBlock(t, ttl), mountType: "token" });
  }

  // --- AppRole endpoints ----------------------------------------------------------------------

  private approleLogin(ctx: Ctx, m: Mount): Result {
    if (ctx.op !== "write") return err(405, ME_UNSUPPORTED_OP);
    const roleId = weakString(ctx.body["role_id"]).trim();
    if (!roleId) return err(400, "missing role_id");
    const role = [...m.roles.values()].find((r) => r.roleId === roleId);
    if (!role) return err(400, INVALID_ROLE_OR_SECRET);
    const secretId = weakString(ctx.body["secret_id"]).trim();
    if (!secretId) return err(400, "missing secret_id");
    const sid = role.secretIds.get(secretId);
    if (!sid) return err(400, INVALID_ROLE_OR_SECRET);
    if (sid.expireAtMs !== null && this.now() >= sid.expireAtMs) {
      role.secretIds.delete(secretId);
      return err(400, INVALID_ROLE_OR_SECRET);
    }
    if (sid.usesLeft > 0) {
      sid.usesLeft--;
      if (sid.usesLeft === 0) role.secretIds.delete(secretId);
    }
    const mountName = m.path.slice("auth/".length, -1);
    const t = this.newToken({
      policies: role.policies,
      ttl: role.tokenTtl,
      maxTtl: role.tokenMaxTtl,
      path: `${m.path}login`,
      displayName: mountName.replace(/\//g, "-"),
      orphan: true,
      renewable: true,
      meta: { ...sid.metadata, role_name: role.roleName },
      type: role.tokenType,
      entityId: role.entityId,
      parent: null,
      period: role.tokenPeriod,
    });
    return ok({ data: null, auth: this.authBlock(t, t.creationTtl), mountType: "" }, { wrappedAccessor: t.accessor || undefined });
  }

  private approle(ctx: Ctx, m: Mount, rest: string): Result {
    const { op, body } = ctx;
    const mm = /^role\/([^/]+)\/(role-id|secret-id|secret-id\/lookup|secret-id\/destroy|secret-id-accessor\/lookup|secret-id-accessor\/destroy)\/?$/.exec(rest);
    if (!mm) {
      if (/^role\/?$/.test(rest) && op === "list") {
        const keys = [...m.roles.keys()].sort();
        return keys.length ? ok({ data: { keys }, mountType: "approle" }) : NOT_FOUND;
      }
      return err(404, ME_UNSUPPORTED_PATH);
    }
    const roleName = mm[1] as string;
    const role = m.roles.get(roleName);
    switch (mm[2]) {
      case "role-id":
        if (op === "read") return role ? ok({ data: { role_id: role.roleId }, mountType: "approle" }) : NOT_FOUND;
        if (op === "write") {
          if (!role) return err(400, `role name "${roleName}" doesn't exist`);
          const v = weakString(body["role_id"]);
          if (!v) return err(400, "missing role_id");
          role.roleId = v;
          return NO_CONTENT;
        }
        return err(405, ME_UNSUPPORTED_OP);
      case "secret-id": {
        if (op === "list") {
          if (!role) return NOT_FOUND;
          const keys = [...role.secretIds.values()].map((s) => s.accessor).sort();
          return keys.length ? ok({ data: { keys }, mountType: "approle" }) : NOT_FOUND;
        }
        if (op !== "write") return err(405, ME_UNSUPPORTED_OP);
        if (!role) return err(400, `role name "${roleName}" doesn't exist`);
        let metadata: Record<string, string> = {};
        if (body["metadata"] !== undefined && body["metadata"] !== "") {
          try {
            const parsed: unknown = typeof body["metadata"] === "string" ? JSON.parse(body["metadata"]) : body["metadata"];
            if (!isObj(parsed)) throw new Error("not an object");
            metadata = Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, weakString(v)]));
          } catch {
            return err(400, "failed to parse metadata to map");
          }
        }
        let ttl: number | undefined;
        try {
          if (body["ttl"] !== undefined) ttl = parseDurationSecond(body["ttl"]);
        } catch (e) {
          return err(400, (e as Error).message);
        }
        const numUses = weakInt(body["num_uses"]);
        const e = this.newSecretId(role, { ttl, numUses, metadata });
        return ok(this.secretIdEnv(e), { wrappedAccessor: e.accessor });
      }
      case "secret-id/destroy": {
        if (op !== "write" && op !== "delete") return err(405, ME_UNSUPPORTED_OP);
        const secretId = weakString(body["secret_id"]).trim();
        if (!secretId) return err(400, "missing secret_id");
        if (!role) return err(400, `role name "${roleName}" doesn't exist`);
        role.secretIds.delete(secretId);
        return NO_CONTENT;
      }
      case "secret-id-accessor/lookup":
      case "secret-id-accessor/destroy": {
        const destroy = mm[2] === "secret-id-accessor/destroy";
        if (op !== "write" && !(destroy && op === "delete")) return err(405, ME_UNSUPPORTED_OP);
        const accessor = weakString(body["secret_id_accessor"]).trim();
        if (!accessor) return err(400, "missing secret_id_accessor");
        if (!role) return err(400, `role name "${roleName}" doesn't exist`);
        const sid = [...role.secretIds.values()].find((x) => x.accessor === accessor);
        if (!sid || !this.secretIdLive(sid)) return err(400, `failed to find accessor entry for secret_id_accessor: ${JSON.stringify(accessor)}`);
        if (destroy) {
          role.secretIds.delete(sid.secretId);
          return NO_CONTENT;
        }
        return ok({ data: this.secretIdLookupData(sid), mountType: "approle" });
      }
      default: {
        // secret-id/lookup
        if (op !== "write") return err(405, ME_UNSUPPORTED_OP);
        const secretId = weakString(body["secret_id"]).trim();
        if (!secretId) return err(400, "missing secret_id");
        if (!role) return err(400, `role name "${roleName}" doesn't exist`);
        const sid = role.secretIds.get(secretId);
        if (!sid || !this.secretIdLive(sid)) return NO_CONTENT;
        return ok({ data: this.secretIdLookupData(sid), mountType: "approle" });
      }
    }
  }

  private secretIdLookupData(sid: SecretIdEntry): Obj {
    return {
      cidr_list: [],
      creation_time: fmtTime(sid.created),
      expiration_time: sid.expireAtMs === null ? "0001-01-01T00:00:00Z" : fmtTime({ ms: sid.expireAtMs, ns: sid.created.ns }),
      last_updated_time: fmtTime(sid.created),
      metadata: { ...sid.metadata },
      secret_id_accessor: sid.accessor,
      secret_id_num_uses: sid.usesLeft,
      secret_id_ttl: sid.ttl,
      token_bound_cidrs: [],
    };
  }

  // --- leases ---------------------------------------------------------------------------------

  /**
   * A lease belongs to the token whose request created it (`creator`, a service token). A token
   * revoked during that request (its last use) takes the lease with it right away, as Vault's
   * lazy revocation after the request does. A batch token's leases end with it too (Vault ties
   * them to its expiry); the double does not cap their TTL at the batch token's.
   */
  private newLease(
    mount: Mount,
    id: string,
    ttl: number,
    maxTtl: number,
    renewable: boolean,
    creds: { username: string; password: string },
    creator: TokenEntry | null,
  ): LeaseEntry {
    const issue = this.stamp();
    const owner = creator;
    const e: LeaseEntry = {
      id,
      mount: mount.path,
      issue,
      expireAtMs: issue.ms + ttl * 1000,
      maxExpireAtMs: issue.ms + maxTtl * 1000,
      defaultTtl: ttl,
      renewable,
      revoked: owner !== null && !this.tokens.has(owner.id),
      lastRenewal: null,
      ...creds,
      creator: owner?.id ?? null,
      creatorAccessor: owner?.accessor || null,
    };
    this.leases.set(id, e);
    return e;
  }

  /** framework.CalculateTTL for a secret lease: increment (or the default TTL), capped at issue + max TTL. */
  private renewLease(e: LeaseEntry, increment: number): Result {
    if (!this.leaseLive(e)) return err(400, "lease not found");
    if (!e.renewable) return err(400, "lease is not renewable");
    const now = this.now();
    const wanted = increment > 0 ? increment : e.defaultTtl;
    const left = Math.max(0, Math.round((e.maxExpireAtMs - now) / 1000));
    let ttl = wanted;
    let warnings: string[] | null = null;
    if (ttl > left) {
      warnings = [`TTL of "${goDuration(wanted)}" exceeded the effective max_ttl of "${goDuration(left)}"; TTL value is capped accordingly`];
      ttl = left;
    }
    e.expireAtMs = now + ttl * 1000;
    e.lastRenewal = this.stamp();
    return ok({ leaseId: e.id, renewable: true, leaseDuration: ttl, data: null, warnings, mountType: "system" });
  }

  // --- database engine ------------------------------------------------------------------------

  private database(ctx: Ctx, m: Mount, rest: string): Result {
    const mm = /^creds\/([^/]+)\/?$/.exec(rest);
    if (!mm) {
      if (/^roles\/?$/.test(rest) && ctx.op === "list") {
        const keys = [...(m.dbRoles?.keys() ?? [])].sort();
        return keys.length ? ok({ data: { keys }, mountType: "database" }) : NOT_FOUND;
      }
      return err(404, ME_UNSUPPORTED_PATH);
    }
    if (ctx.op !== "read") return err(405, ME_UNSUPPORTED_OP);
    const roleName = mm[1] as string;
    const role = m.dbRoles?.get(roleName);
    if (!role) return err(400, `unknown role: ${roleName}`);
    const tok = ctx.token as TokenEntry;
    const issued = Math.floor(this.now() / 1000);
    const username = `v-${tok.displayName.slice(0, 8)}-${roleName.slice(0, 8)}-${randomBase62(20)}-${issued}`;
    const pw = randomBase62(20).split("");
    pw[Math.floor(pw.length / 2)] = "-";
    const password = pw.join("");
    const id = `${m.path}creds/${roleName}/${randomBase62(24)}`;
    const maxTtl = role.maxTtl > 0 ? Math.min(role.maxTtl, SYSTEM_MAX_TTL) : SYSTEM_MAX_TTL;
    const ttl = Math.min(role.defaultTtl > 0 ? role.defaultTtl : DEFAULT_LEASE_TTL, maxTtl);
    this.newLease(m, id, ttl, maxTtl, role.renewable, { username, password }, tok);
    return ok({ leaseId: id, renewable: role.renewable, leaseDuration: ttl, data: { password, username }, mountType: "database" });
  }

  // --- PKI engine -----------------------------------------------------------------------------

  /** Vault's validateNames, reduced to the role options the double supports. */
  private pkiNameAllowed(role: PkiRole, n: string): boolean {
    const hostname = /^(\*\.)?([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*\.?$/.test(n);
    if (!hostname) return false; // enforce_hostnames (default true)
    const name = n.toLowerCase().replace(/\.$/, "");
    if (role.allowAnyName) return true;
    if (role.allowLocalhost && (name === "localhost" || name === "localdomain")) return true;
    for (const raw of role.allowedDomains) {
      const d = raw.toLowerCase();
      if (role.allowBareDomains && name === d) return true;
      if (role.allowSubdomains && name.endsWith(`.${d}`) && name.length > d.length + 1) return true;
      if (role.allowGlobDomains && d.includes("*")) {
        const re = new RegExp(`^${d.split("*").map((x) => x.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
        if (re.test(name)) return true;
      }
    }
    return false;
  }

  private async pki(ctx: Ctx, m: Mount, rest: string): Promise<Result> {
    const st = m.pki as PkiState;
    const { op, body } = ctx;
    const mm = /^(?:issuer\/([^/]+)\/)?issue\/([^/]+)\/?$/.exec(rest);
    if (!mm) {
      if (/^roles\/?$/.test(rest) && op === "list") {
        const keys = [...st.roles.keys()].sort();
        return keys.length ? ok({ data: { keys }, mountType: "pki" }) : NOT_FOUND;
      }
      if (rest === "ca/pem" && op === "read") return { t: "bytes", status: 200, body: `${st.ca.intermediate.pem}\n`, contentType: "application/pem-certificate-chain" };
      return err(404, ME_UNSUPPORTED_PATH);
    }
    if (op !== "write") return err(405, ME_UNSUPPORTED_OP);
    const issuerRef = mm[1];
    if (issuerRef !== undefined && issuerRef !== "default" && issuerRef !== st.issuerId) {
      return err(400, `unable to find PKI issuer for reference: ${issuerRef}`);
    }
    const roleName = mm[2] as string;
    const role = st.roles.get(roleName);
    if (!role) return err(400, `unknown role: ${roleName}`);

    const format = weakString(body["format"]) || "pem";
    if (!["pem", "der", "pem_bundle"].includes(format)) return err(400, `the "format" path parameter must be "pem", "der", or "pem_bundle"`);
    const pkFormat = weakString(body["private_key_format"]) || "der";
    if (!["der", "pem", "pkcs8"].includes(pkFormat)) return err(400, `the "private_key_format" path parameter must be "der", "pem" or "pkcs8"`);
    const cn = weakString(body["common_name"]).trim();
    if (!cn) {
      return err(400, `the common_name field is required, or must be provided in a CSR with "use_csr_common_name" set to true, unless "require_cn" is set to false`);
    }
    if (!this.pkiNameAllowed(role, cn)) return err(400, `common name ${cn} not allowed by this role`);
    const list = (v: unknown): string[] =>
      (Array.isArray(v) ? v.map(weakString) : weakString(v).split(",")).map((x) => x.trim()).filter((x) => x !== "");
    const excludeCn = body["exclude_cn_from_sans"] === true || body["exclude_cn_from_sans"] === "true";
    const dnsNames: string[] = excludeCn ? [] : [cn];
    for (const n of list(body["alt_names"])) {
      if (!this.pkiNameAllowed(role, n)) return err(400, `subject alternate name ${n} not allowed by this role`);
      if (!dnsNames.includes(n)) dnsNames.push(n);
    }
    const ips: Buffer[] = [];
    for (const ip of list(body["ip_sans"])) {
      if (!role.allowIpSans) return err(400, `IP Subject Alternative Names are not allowed in this role, but was provided ${ip}`);
      const b = ipBytes(ip);
      if (!b) return err(400, `the value "${ip}" is not a valid IP address`);
      ips.push(b);
    }
    if (list(body["uri_sans"]).length) return err(400, "URI Subject Alternative Names are not allowed in this role, but were provided via the API");

    // TTL
    const maxTtl = role.maxTtl || st.maxTtl || SYSTEM_MAX_TTL;
    let ttl: number;
    try {
      ttl = body["ttl"] !== undefined && body["ttl"] !== "" ? parseDurationSecond(body["ttl"]) : 0;
    } catch (e) {
      return err(400, `error converting input for field "ttl": ${(e as Error).message}`);
    }
    if (ttl <= 0) ttl = role.ttl || st.defaultTtl || DEFAULT_LEASE_TTL;
    const warnings: string[] = [];
    const now = this.now();
    let notAfterMs = now + ttl * 1000;
    const notAfterRaw = weakString(body["not_after"]);
    if (notAfterRaw) {
      const t = Date.parse(notAfterRaw);
      if (Number.isNaN(t)) return err(400, `unable to parse "not_after" field: ${notAfterRaw}`);
      notAfterMs = t;
    } else if (ttl > maxTtl) {
      warnings.push(`TTL "${goDuration(ttl)}" is longer than permitted maxTTL "${goDuration(maxTtl)}", so maxTTL is being used`);
      notAfterMs = now + maxTtl * 1000;
    }
    const ca = st.ca.intermediate;
    if (notAfterMs > ca.notAfterMs) {
      const goTime = (ms: number): string => new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " +0000 UTC");
      return err(400, `cannot satisfy request, as TTL would result in notAfter of ${goTime(notAfterMs)} that is beyond the expiration of the CA certificate at ${goTime(ca.notAfterMs)}`);
    }

    // Key and certificate
    const kp = await this.keyPool.take(role.keyType, role.keyBits);
    const leaf = signLeaf({ commonName: cn, dnsNames, ipAddresses: ips, notBeforeMs: now - 30_000, notAfterMs, publicKey: kp.publicKey, issuer: ca });
    const keyOut = st.mismatch ? (await this.keyPool.take(role.keyType, role.keyBits)).privateKey : kp.privateKey;
    const asPem = format !== "der";
    const enc = (pemText: string, der: Buffer): string => (asPem ? pemText : der.toString("base64"));
    const privateKey = exportPrivateKey(keyOut, role.keyType, pkFormat === "pkcs8", asPem);
    const chain = [enc(ca.pem, ca.der)];
    if (!(body["remove_roots_from_chain"] === true || body["remove_roots_from_chain"] === "true")) chain.push(enc(st.ca.root.pem, st.ca.root.der));
    const certificate = format === "pem_bundle" ? `${privateKey}\n${leaf.pem}` : enc(leaf.pem, leaf.der);
    const expiration = Math.floor(leaf.notAfterMs / 1000);
    st.issued.push({ serial: leaf.serial, commonName: cn, notAfter: leaf.notAfterMs });

    const env: Env = {
      data: {
        ca_chain: chain,
        certificate,
        expiration,
        issuing_ca: enc(ca.pem, ca.der),
        private_key: privateKey,
        private_key_type: role.keyType,
        serial_number: leaf.serial,
      },
      warnings: warnings.length ? warnings : null,
      mountType: "pki",
    };
    if (role.generateLease) {
      const id = `${m.path}issue/${roleName}/${randomBase62(24)}`;
      const secs = Math.max(0, Math.round((leaf.notAfterMs - this.now()) / 1000));
      this.newLease(m, id, secs, secs, false, { username: "", password: "" }, ctx.token);
      env.leaseId = id;
      env.leaseDuration = secs;
      env.renewable = false;
    }
    return ok(env);
  }

  // --- generic paths --------------------------------------------------------------------------

  private genericOp(ctx: Ctx, p: string, g: GenericEntry, mount: Mount | undefined): Result {
    const mountType = g.opts.mountType ?? mount?.type ?? (p.split("/")[0] as string);
    switch (ctx.op) {
      case "read":
      case "write":
        if (ctx.op === "write" && mount?.kind === "cubbyhole") {
          if (Object.keys(ctx.body).length === 0) return err(400, "missing data fields");
          g.data = clone(ctx.body);
          return NO_CONTENT;
        }
        return ok({
          leaseId: g.opts.leaseId ?? "",
          renewable: g.opts.renewable ?? false,
          leaseDuration: g.opts.leaseDuration ?? 0,
          data: clone(g.data),
          warnings: g.opts.warnings ? [...g.opts.warnings] : null,
          mountType,
        });
      case "delete":
        this.generic.delete(p);
        return NO_CONTENT;
      default:
        return err(405, ME_UNSUPPORTED_OP);
    }
  }

  /** Paths on a generic/cubbyhole mount that have no fixture. */
  private genericMount(ctx: Ctx, m: Mount, rest: string): Result {
    const { op } = ctx;
    if (op === "list") {
      const keys = listKeys([...this.generic.keys()].filter((k) => `${k}/`.startsWith(m.path)).map((k) => k.slice(m.path.length)), rest);
      return keys.length ? ok({ data: { keys }, mountType: m.type }) : NOT_FOUND;
    }
    if (op === "write" && m.kind === "cubbyhole") {
      if (Object.keys(ctx.body).length === 0) return err(400, "missing data fields");
      this.generic.set(trimSlashes(ctx.path), { data: clone(ctx.body), opts: {} });
      return NO_CONTENT;
    }
    if (op === "delete") return NO_CONTENT;
    if (op === "read") return NOT_FOUND;
    return err(405, ME_UNSUPPORTED_OP);
  }

  // --- KV v1 ----------------------------------------------------------------------------------

  private kv1(ctx: Ctx, m: Mount, rest: string): Result {
    const { op, body } = ctx;
    const key = rest.replace(/^\/+/, "");
    switch (op) {
      case "read": {
        const d = m.kv1.get(key);
        if (!d) return NOT_FOUND;
        let lease = DEFAULT_LEASE_TTL;
        const ttlRaw = d["ttl"] ?? d["lease"];
        if (ttlRaw !== undefined) {
          try {
            const n = parseDurationSecond(ttlRaw);
            if (n > 0) lease = n;
          } catch {
            // not a duration: default TTL
          }
        }
        return ok({ leaseDuration: lease, data: clone(d), mountType: "kv" });
      }
      case "list": {
        const keys = listKeys([...m.kv1.keys()], key);
        return keys.length ? ok({ data: { keys }, mountType: "kv" }) : NOT_FOUND;
      }
      case "write":
        if (Object.keys(body).length === 0) return err(400, "missing data fields");
        m.kv1.set(key, clone(body));
        return NO_CONTENT;
      case "delete":
        m.kv1.delete(key);
        return NO_CONTENT;
      default:
        return err(405, ME_UNSUPPORTED_OP);
    }
  }

  // --- KV v2 ----------------------------------------------------------------------------------

  private isDeleted(v: KvVersion): boolean {
    return v.deletion !== null && v.deletion.ms <= this.now();
  }

  private versionMeta(k: KvKey, n: number, v: KvVersion): Obj {
    return {
      created_time: fmtTime(v.created),
      custom_metadata: k.customMetadata ? { ...k.customMetadata } : null,
      deletion_time: v.deletion ? fmtTime(v.deletion) : "",
      destroyed: v.destroyed,
      version: n,
    };
  }

  private kv2Write(m: Mount, key: string, data: Obj): { version: number; meta: Obj } {
    const now = this.stamp();
    let k = m.kv2.get(key);
    if (!k) {
      k = {
        created: now,
        updated: now,
        current: 0,
        versions: new Map(),
        customMetadata: null,
        maxVersions: 0,
        casRequired: false,
        deleteVersionAfter: "0s",
      };
      m.kv2.set(key, k);
    }
    k.current += 1;
    k.updated = now;
    const v: KvVersion = { created: now, deletion: null, destroyed: false, data };
    k.versions.set(k.current, v);
    const max = k.maxVersions || m.kv2Config.maxVersions || 10;
    for (const n of [...k.versions.keys()].sort((a, b) => a - b)) {
      if (k.versions.size <= max) break;
      k.versions.delete(n);
    }
    return { version: k.current, meta: this.versionMeta(k, k.current, v) };
  }

  private kv2SoftDelete(k: KvKey, versions: number[]): void {
    const now = this.stamp();
    for (const n of versions) {
      const v = k.versions.get(n);
      if (v && !v.destroyed && !this.isDeleted(v)) v.deletion = now;
    }
    k.updated = now;
  }

  private kv2Undelete(k: KvKey, versions: number[]): void {
    for (const n of versions) {
      const v = k.versions.get(n);
      if (v && !v.destroyed) v.deletion = null;
    }
    k.updated = this.stamp();
  }

  private kv2Destroy(k: KvKey, versions: number[]): void {
    for (const n of versions) {
      const v = k.versions.get(n);
      if (v) {
        v.destroyed = true;
        v.data = null;
      }
    }
    k.updated = this.stamp();
  }

  private kv2(ctx: Ctx, m: Mount, rest: string): Result {
    const { op, body } = ctx;
    const slash = rest.indexOf("/");
    const section = slash < 0 ? rest : rest.slice(0, slash);
    const key = slash < 0 ? "" : rest.slice(slash + 1);
    const verb = { read: "get", list: "list", write: "put", delete: "delete", patch: "patch" }[op];
    const invalid = (msg: string): Result => ({
      t: "env",
      status: 404,
      raw: true,
      env: { data: null, warnings: [msg], mountType: "" },
    });
    const invalidPath = (): Result =>
      invalid(
        `Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv ${verb}' for this operation.`,
      );
    const rootOp = (): Result => invalid("Non-listing operations on the root of a K/V v2 mount are not supported.");

    if (section === "config" && key === "") {
      if (op === "read") {
        const c = m.kv2Config;
        return ok({ data: { cas_required: c.casRequired, delete_version_after: c.deleteVersionAfter, max_versions: c.maxVersions }, mountType: "kv" });
      }
      if (op === "write") {
        if (body["cas_required"] !== undefined) m.kv2Config.casRequired = body["cas_required"] === true || body["cas_required"] === "true";
        const mv = weakInt(body["max_versions"]);
        if (mv !== undefined) m.kv2Config.maxVersions = mv;
        return NO_CONTENT;
      }
      return err(405, ME_UNSUPPORTED_OP);
    }

    const k = m.kv2.get(trimSlashes(key));
    switch (section) {
      case "data": {
        if (op === "list") return invalidPath();
        if (trimSlashes(key) === "") return rootOp();
        if (op === "read") {
          if (!k) return NOT_FOUND;
          let n = k.current;
          const vq = ctx.query.get("version");
          if (vq !== null && vq !== "") {
            const parsed = weakInt(vq);
            if (parsed === undefined) return err(400, `error converting input ${vq} for field "version"`);
            if (parsed > 0) n = parsed;
          }
          const v = k.versions.get(n);
          if (!v || n > k.current) return NOT_FOUND;
          if (v.destroyed || this.isDeleted(v)) {
            return { t: "env", status: 404, raw: true, env: { data: { data: null, metadata: this.versionMeta(k, n, v) }, mountType: "" } };
          }
          return ok({ data: { data: clone(v.data), metadata: this.versionMeta(k, n, v) }, mountType: "kv" });
        }
        if (op === "write" || op === "patch") {
          const data = body["data"];
          if (!isObj(data)) return err(400, "no data provided");
          const options = isObj(body["options"]) ? body["options"] : {};
          const casRaw = options["cas"];
          const cas = casRaw === undefined ? undefined : weakInt(casRaw);
          if (casRaw !== undefined && cas === undefined) return err(400, "check-and-set parameter did not match the current version");
          const casRequired = m.kv2Config.casRequired || (k?.casRequired ?? false);
          if (op === "patch") {
            if (!k) return NOT_FOUND;
            const cur = k.versions.get(k.current);
            if (!cur || cur.destroyed || this.isDeleted(cur) || !cur.data) return NOT_FOUND;
            if (cas === undefined && casRequired) return err(400, "check-and-set parameter required for this call");
            if (cas !== undefined && cas !== k.current) return err(400, "check-and-set parameter did not match the current version");
            const merged = mergePatch(clone(cur.data), data) as Obj;
            return ok({ data: this.kv2Write(m, trimSlashes(key), merged).meta, mountType: "kv" });
          }
          if (cas === undefined && casRequired) return err(400, "check-and-set parameter required for this call");
          if (cas !== undefined && cas !== (k?.current ?? 0)) return err(400, "check-and-set parameter did not match the current version");
          return ok({ data: this.kv2Write(m, trimSlashes(key), clone(data)).meta, mountType: "kv" });
        }
        if (op === "delete") {
          if (k) this.kv2SoftDelete(k, [k.current]);
          return NO_CONTENT;
        }
        return err(405, ME_UNSUPPORTED_OP);
      }
      case "metadata": {
        if (op === "list") {
          const keys = listKeys([...m.kv2.keys()], key);
          return keys.length ? ok({ data: { keys }, mountType: "kv" }) : NOT_FOUND;
        }
        if (trimSlashes(key) === "") return rootOp();
        if (op === "read") {
          if (!k) return NOT_FOUND;
          const versions: Obj = {};
          for (const [n, v] of k.versions) {
            versions[String(n)] = { created_time: fmtTime(v.created), deletion_time: v.deletion ? fmtTime(v.deletion) : "", destroyed: v.destroyed };
          }
          const nums = [...k.versions.keys()];
          return ok({
            data: {
              cas_required: k.casRequired,
              created_time: fmtTime(k.created),
              current_version: k.current,
              custom_metadata: k.customMetadata ? { ...k.customMetadata } : null,
              delete_version_after: k.deleteVersionAfter,
              max_versions: k.maxVersions,
              oldest_version: nums.length ? Math.min(...nums) : 0,
              updated_time: fmtTime(k.updated),
              versions,
            },
            mountType: "kv",
          });
        }
        if (op === "write" || op === "patch") {
          const now = this.stamp();
          let kk = k;
          if (!kk) {
            if (op === "patch") return NOT_FOUND;
            kk = { created: now, updated: now, current: 0, versions: new Map(), customMetadata: null, maxVersions: 0, casRequired: false, deleteVersionAfter: "0s" };
            m.kv2.set(trimSlashes(key), kk);
          }
          if (isObj(body["custom_metadata"])) {
            kk.customMetadata = Object.fromEntries(Object.entries(body["custom_metadata"]).map(([a, b]) => [a, weakString(b)]));
          }
          const mv = weakInt(body["max_versions"]);
          if (mv !== undefined) kk.maxVersions = mv;
          if (body["cas_required"] !== undefined) kk.casRequired = body["cas_required"] === true || body["cas_required"] === "true";
          if (body["delete_version_after"] !== undefined) {
            try {
              kk.deleteVersionAfter = goDuration(parseDurationSecond(body["delete_version_after"]));
            } catch (e) {
              return err(400, (e as Error).message);
            }
          }
          kk.updated = now;
          return NO_CONTENT;
        }
        if (op === "delete") {
          m.kv2.delete(trimSlashes(key));
          return NO_CONTENT;
        }
        return err(405, ME_UNSUPPORTED_OP);
      }
      case "delete":
      case "undelete":
      case "destroy": {
        if (op === "list") return invalidPath();
        if (trimSlashes(key) === "") return rootOp();
        if (op !== "write") return err(405, ME_UNSUPPORTED_OP);
        const versions = versionList(body["versions"]);
        if (!versions || versions.length === 0) return err(400, "no version number provided");
        if (k) {
          if (section === "delete") this.kv2SoftDelete(k, versions);
          else if (section === "undelete") this.kv2Undelete(k, versions);
          else this.kv2Destroy(k, versions);
        }
        return NO_CONTENT;
      }
      case "subkeys": {
        if (trimSlashes(key) === "") return rootOp();
        if (op !== "read") return err(405, ME_UNSUPPORTED_OP);
        if (!k) return NOT_FOUND;
        const vq = weakInt(ctx.query.get("version") ?? "") ?? 0;
        const n = vq > 0 ? vq : k.current;
        const v = k.versions.get(n);
        if (!v || v.destroyed || this.isDeleted(v) || !v.data) return NOT_FOUND;
        return ok({ data: { metadata: this.versionMeta(k, n, v), subkeys: subkeys(v.data) }, mountType: "kv" });
      }
      default:
        return invalidPath();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Free helpers

function tokenFromHeaders(h: http.IncomingHttpHeaders): string {
  const x = h["x-vault-token"];
  const xv = Array.isArray(x) ? x[0] : x;
  if (xv) return xv.trim();
  const auth = h["authorization"];
  if (auth && /^Bearer\s+/i.test(auth)) return auth.replace(/^Bearer\s+/i, "").trim();
  return "";
}

/** Keys directly under `prefix` ("" or ending with "/"); folders end with "/". Sorted. */
function listKeys(all: string[], prefix: string): string[] {
  const p = prefix === "" || prefix.endsWith("/") ? prefix : `${prefix}/`;
  const out = new Set<string>();
  for (const k of all) {
    if (!k.startsWith(p) || k === p) continue;
    const rest = k.slice(p.length);
    const i = rest.indexOf("/");
    out.add(i < 0 ? rest : rest.slice(0, i + 1));
  }
  return [...out].sort();
}

/** RFC 7396 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return patch;
  const out: Obj = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function subkeys(v: Obj): Obj {
  const out: Obj = {};
  for (const [k, x] of Object.entries(v)) out[k] = isObj(x) ? subkeys(x) : null;
  return out;
}

/** Vault's error body for a status, used by faults that give only a status. */
export function defaultErrorBody(status: number, path: string): string {
  let errors: string[];
  switch (status) {
    case 403:
      errors = [ME_PERMISSION_DENIED];
      break;
    case 412:
      errors = ["required index state not present"];
      break;
    case 413:
      errors = ["http: request body too large"];
      break;
    case 429:
      errors = [`request path ${JSON.stringify(path)}: rate limit quota exceeded`];
      break;
    case 500:
      errors = [multiError("internal error")];
      break;
    case 502:
      errors = ["upstream rate limited"];
      break;
    case 503:
      errors = ["Vault is sealed"];
      break;
    default:
      errors = [];
  }
  return `${goJson({ errors })}\n`;
}
