/** The double's public option and report types (re-exported by vault-double.ts). */

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
  /** hold the answer until this settles (a gate the test opens), then answer as usual */
  holdUntil?: Promise<unknown>;
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
