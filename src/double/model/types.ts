/** The double's internal model: what it stores for tokens, leases, wraps, mounts and engines. */
import type { KeyType, CaHierarchy } from "../pki.js";
import type { Stamp } from "../clock.js";
import type { GenericOptions, PkiIssuedCert } from "../types.js";
import type { Obj } from "../util.js";

export const DEFAULT_LEASE_TTL = 2764800; // 768h
export const SYSTEM_MAX_TTL = 2764800;

export interface TokenEntry {
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

export interface WrapInfo {
  token: string;
  accessor: string;
  ttl: number;
  creation_time: string;
  creation_path: string;
  wrapped_accessor?: string;
}

export interface Env {
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

export interface WrapEntry {
  token: string;
  accessor: string;
  ttl: number;
  created: Stamp;
  creationPath: string;
  env: Env;
  expireAtMs: number;
  wrappedAccessor?: string;
}

export interface SecretIdEntry {
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

export interface AppRole {
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

export interface KvVersion {
  created: Stamp;
  deletion: Stamp | null;
  destroyed: boolean;
  data: Obj | null;
}

export interface KvKey {
  created: Stamp;
  updated: Stamp;
  current: number;
  versions: Map<number, KvVersion>;
  customMetadata: Record<string, string> | null;
  maxVersions: number;
  casRequired: boolean;
  deleteVersionAfter: string;
}

export type MountKind = "kv1" | "kv2" | "approle" | "token" | "system" | "generic" | "cubbyhole" | "identity" | "pki" | "database";

export interface PkiRole {
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

export interface PkiState {
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

export interface LeaseEntry {
  id: string;
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

export interface Mount {
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

export interface GenericEntry {
  data: Obj;
  opts: GenericOptions;
}
