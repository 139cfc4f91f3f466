/** Leases (database credentials, PKI certificates with generate_lease): lifetime, renewal, revocation. */
import { goDuration } from "../duration.js";
import { err, ok } from "../result.js";
import type { Result } from "../result.js";
import type { State } from "../state.js";
import type { LeaseInfo } from "../types.js";
import { normMount } from "../util.js";
import { expireTokens } from "./tokens.js";
import type { LeaseEntry, TokenEntry } from "./types.js";

export function leaseLive(s: State, e: LeaseEntry): boolean {
  return !e.revoked && s.clock.now() < e.expireAtMs;
}

export function leaseInfo(s: State, leaseId: string): LeaseInfo | undefined {
  expireTokens(s);
  const e = s.leases.get(leaseId);
  if (!e) return undefined;
  return {
    expiresAt: e.expireAtMs,
    renewable: e.renewable,
    revoked: e.revoked,
    tokenAccessor: e.creatorAccessor,
    expired: s.clock.now() >= e.expireAtMs,
    username: e.username,
    issuedAt: e.issue.ms,
    maxExpiresAt: e.maxExpireAtMs,
  };
}

/** Ids of leases that are neither revoked nor expired, optionally only those under `mount`. */
export function activeLeases(s: State, mount?: string): string[] {
  expireTokens(s);
  const prefix = mount === undefined ? "" : normMount(mount);
  return [...s.leases.values()].filter((e) => leaseLive(s, e) && e.id.startsWith(prefix)).map((e) => e.id);
}

/** Revokes a lease as `sys/leases/revoke` does; false when the lease is unknown. */
export function revokeLease(s: State, leaseId: string): boolean {
  const e = s.leases.get(leaseId);
  if (!e) return false;
  e.revoked = true;
  return true;
}

/** Whether a username/password pair from `<mount>/creds/<role>` would still log in to the database. */
export function dbCredentialValid(s: State, username: string, password: string): boolean {
  expireTokens(s);
  return [...s.leases.values()].some((e) => e.username === username && e.password === password && e.username !== "" && leaseLive(s, e));
}

/**
 * A lease belongs to the token whose request created it (`creator`, a service token). A token
 * revoked during that request (its last use) takes the lease with it right away, as Vault's
 * lazy revocation after the request does. A batch token's leases end with it too (Vault ties
 * them to its expiry); the double does not cap their TTL at the batch token's.
 */
export function newLease(
  s: State,
  id: string,
  ttl: number,
  maxTtl: number,
  renewable: boolean,
  creds: { username: string; password: string },
  creator: TokenEntry | null,
): LeaseEntry {
  const issue = s.clock.stamp();
  const e: LeaseEntry = {
    id,
    issue,
    expireAtMs: issue.ms + ttl * 1000,
    maxExpireAtMs: issue.ms + maxTtl * 1000,
    defaultTtl: ttl,
    renewable,
    revoked: creator !== null && !s.tokens.has(creator.id),
    lastRenewal: null,
    ...creds,
    creator: creator?.id ?? null,
    creatorAccessor: creator?.accessor || null,
  };
  s.leases.set(id, e);
  return e;
}

/** framework.CalculateTTL for a secret lease: increment (or the default TTL), capped at issue + max TTL. */
export function renewLease(s: State, e: LeaseEntry, increment: number): Result {
  if (!leaseLive(s, e)) return err(400, "lease not found");
  if (!e.renewable) return err(400, "lease is not renewable");
  const now = s.clock.now();
  const wanted = increment > 0 ? increment : e.defaultTtl;
  const left = Math.max(0, Math.round((e.maxExpireAtMs - now) / 1000));
  let ttl = wanted;
  let warnings: string[] | null = null;
  if (ttl > left) {
    warnings = [`TTL of "${goDuration(wanted)}" exceeded the effective max_ttl of "${goDuration(left)}"; TTL value is capped accordingly`];
    ttl = left;
  }
  e.expireAtMs = now + ttl * 1000;
  e.lastRenewal = s.clock.stamp();
  return ok({ leaseId: e.id, renewable: true, leaseDuration: ttl, data: null, warnings, mountType: "system" });
}
