/**
 * Leases die with the token that created them (Vault's expiration manager revokes a token's
 * leases when the token is revoked or expires, max TTL included). vault-render therefore records,
 * for the token it holds and for every lease, which token it is (a keyed hash; the accessor for
 * people) and how long that token can live:
 * - a lease whose creating token is not the token this run holds is replaced in this run: that
 *   token is gone (revoked, expired) or about to be (nobody renews it any more after a new login);
 * - `check` reports such a lease as an error;
 * - when the AppRole's token max TTL is known (learned from a renewal Vault capped, or an explicit
 *   max TTL) and shorter than a lease's or a certificate set's TTL, sync -v, check and policy warn
 *   and name the fix: a periodic token (`token_period`).
 */
import { formatDuration, parseDuration } from "../support/duration.js";
import type { AuthResult } from "./auth.js";
import type { ResolvedLayout } from "../layout/load.js";
import { outputId } from "../layout/outputs.js";
import type { State, TokenState } from "../state/state.js";
import { keyedHash } from "../state/state.js";

/** The token this run holds, as a lease's creator is recorded. */
export interface CurrentToken {
  id: string;
  accessor: string;
  /** ms: when it is gone at the latest as far as known (max-TTL horizon, else expiry); null = never */
  goneBy: number | null;
  /** this run logged in (the previous token was dropped) */
  loggedIn: boolean;
}

function tokenId(hmacKey: Buffer, token: string): string {
  return keyedHash(hmacKey, `token\0${token}`);
}

/**
 * Merge what this run learned about its token into state.token. The period and the max TTL are
 * the AppRole's settings, so they carry over to a new token until a lookup says otherwise.
 */
export function recordToken(state: State, hmacKey: Buffer, auth: AuthResult): CurrentToken {
  const id = tokenId(hmacKey, auth.token);
  const f = auth.facts;
  const prev = state.token;
  if (!f) {
    return { id, accessor: prev?.id === id ? prev.accessor : "", goneBy: prev?.id === id ? horizon(prev) : null, loggedIn: auth.via === "login" };
  }
  const same = prev?.id === id;
  // A login does not report the period (0 = unknown then); a lookup-self does.
  const period = auth.via === "login" ? (prev?.period ?? 0) : f.period;
  let maxTtl: number | null = f.maxTtl ?? (period > 0 ? null : (prev?.maxTtl ?? null));
  // A token already living past the learned max TTL shows the role was changed since (with a
  // second of slack: creation_time is whole seconds, expire_time is not).
  if (maxTtl !== null && f.maxTtl === undefined && f.expiresAt !== null && f.expiresAt - f.issuedAt > (maxTtl + 1) * 1000) maxTtl = null;
  const maxExpiresAt = f.maxExpiresAt ?? (same ? (prev?.maxExpiresAt ?? null) : null) ?? (maxTtl !== null ? f.issuedAt + maxTtl * 1000 : null);
  const rec: TokenState = { id, accessor: f.accessor, issuedAt: f.issuedAt, expiresAt: f.expiresAt, period, maxExpiresAt, maxTtl };
  state.token = rec;
  return { id, accessor: rec.accessor, goneBy: horizon(rec), loggedIn: auth.via === "login" };
}

function horizon(t: TokenState): number | null {
  return t.maxExpiresAt ?? t.expiresAt;
}

export function describeAccessor(accessor: string | undefined): string {
  return accessor ? `accessor ${accessor}` : "a batch token";
}

/**
 * Why a recorded lease cannot be kept with the token this run holds, or null. A lease recorded
 * before creators were tracked is replaced only by a run that logged in again.
 */
export function leaseOwnerGone(rec: { tokenId?: string; tokenAccessor?: string } | undefined, current: CurrentToken | undefined): string | null {
  if (!rec || !current) return null;
  if (rec.tokenId === undefined) return current.loggedIn ? "this run logged in again and the lease's token is not recorded: Vault revokes a lease with its token" : null;
  if (rec.tokenId === current.id) return null;
  return `the token that created it (${describeAccessor(rec.tokenAccessor)}) is gone or going (revoked, expired or replaced by a new login): Vault revokes a lease with its token`;
}

/** The TTLs the layout's leases and certificate sets need, by subject (seconds). */
function neededTtls(layout: ResolvedLayout, state: State): Array<{ subject: string; ttl: number; kind: "lease" | "pki" }> {
  const out: Array<{ subject: string; ttl: number; kind: "lease" | "pki" }> = [];
  for (const [name, spec] of layout.sources) {
    if (spec.type !== "lease") continue;
    const rec = state.leases[name];
    if (rec && rec.duration > 0) out.push({ subject: `lease "${name}"`, ttl: rec.duration, kind: "lease" });
  }
  for (const o of layout.outputs) {
    if (o.format !== "pki") continue;
    const id = outputId(o);
    let ttl: number | undefined;
    if (o.ttl) ttl = Math.round(parseDuration(o.ttl) / 1000);
    else {
      const p = state.pki[id];
      if (p) ttl = Math.round((p.notAfter - p.notBefore) / 1000);
    }
    if (ttl && ttl > 0) out.push({ subject: `certificate set "${id}"`, ttl, kind: "pki" });
  }
  return out;
}

/**
 * One warning line when the AppRole token's known max TTL is shorter than the TTL of a lease or a
 * certificate set of the layout; null when it is not (or not known: a token's max TTL only shows
 * once Vault caps a renewal, or through an explicit max TTL).
 */
export function tokenMaxTtlWarning(layout: ResolvedLayout, state: State): string | null {
  const t = state.token;
  if (!t || t.maxTtl === null || t.maxTtl <= 0) return null;
  const maxTtl = t.maxTtl;
  const short = neededTtls(layout, state).filter((n) => n.ttl > maxTtl);
  if (!short.length) return null;
  const list = short.map((n) => `${n.subject} (${formatDuration(n.ttl * 1000)})`).join(", ");
  const why = [
    short.some((n) => n.kind === "lease") ? "Vault revokes a lease with the token that created it, so each new login replaces the leased credentials (and runs their hooks)" : "",
    short.some((n) => n.kind === "pki") ? "a PKI role with generate_lease has its certificates revoked with the token" : "",
  ]
    .filter(Boolean)
    .join("; ");
  const role = layout.approle.roleName ?? "<role>";
  return `the AppRole token's max TTL (${formatDuration(maxTtl * 1000)}) is shorter than the TTL of ${list}: ${why}; give the role a periodic token instead (vault write auth/${layout.approle.mount}/role/${role} token_period=<e.g. 24h> token_max_ttl=0), which vault-render renews indefinitely`;
}
