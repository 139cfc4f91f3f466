/**
 * Tokens: accessors, TTL and max TTL (Vault's CalculateTTL), orphans and children, uses, and
 * revocation that cascades to child tokens and to the leases a token created (vault-api.md §5.3).
 */
import type { State } from "../state.js";
import { randomBase62 } from "../util.js";
import { DEFAULT_LEASE_TTL, SYSTEM_MAX_TTL } from "./types.js";
import type { TokenEntry } from "./types.js";

export function newToken(s: State, o: {
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
  const issue = s.clock.stamp();
  const period = type === "batch" ? 0 : (o.period ?? 0);
  const explicitMax = o.explicitMaxTtl ?? 0;
  const maxTtl = o.maxTtl && o.maxTtl > 0 ? Math.min(o.maxTtl, SYSTEM_MAX_TTL) : SYSTEM_MAX_TTL;
  let ttl = o.ttl;
  // CalculateTTL: a periodic token's TTL is its period, capped only by an explicit max TTL.
  if (period > 0) ttl = explicitMax > 0 ? Math.min(period, explicitMax) : period;
  else if (!(isRoot && ttl === 0)) ttl = Math.min(ttl > 0 ? ttl : DEFAULT_LEASE_TTL, maxTtl);
  const neverExpires = isRoot && ttl === 0;
  const parent = o.parent !== undefined && o.parent !== null && s.tokens.has(o.parent) ? o.parent : null;
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
  s.tokens.set(tok.id, tok);
  return tok;
}

/**
 * Revokes a token as Vault's token store does: its child tokens first (recursively), then
 * every lease the token created (vault-api.md §5.3). Unknown tokens are ignored.
 */
export function revokeToken(s: State, token: string): void {
  const t = s.tokens.get(token);
  if (!t) return;
  s.tokens.delete(token);
  s.deadTokenAccessors.set(token, t.accessor);
  for (const c of [...s.tokens.values()]) if (c.parent === token) revokeToken(s, c.id);
  for (const e of s.leases.values()) if (e.creator === token) e.revoked = true;
}

/** Vault's expiration manager: a token past its expiry is revoked, with its children and leases. */
export function expireTokens(s: State): void {
  const now = s.clock.now();
  for (const t of [...s.tokens.values()]) {
    if (t.expireAtMs !== null && now >= t.expireAtMs && s.tokens.has(t.id)) revokeToken(s, t.id);
  }
}

/** A live (known, unexpired) token entry. */
export function liveToken(s: State, token: string): TokenEntry | undefined {
  const t = s.tokens.get(token);
  if (!t) return undefined;
  if (t.expireAtMs !== null && s.clock.now() >= t.expireAtMs) return undefined;
  return t;
}

export function remainingTtl(s: State, t: TokenEntry): number {
  if (t.expireAtMs === null) return 0;
  return Math.max(0, Math.round((t.expireAtMs - s.clock.now()) / 1000));
}

export function tokenInfo(s: State, token: string): { ttl: number; renewable: boolean; policies: string[]; accessor: string } | undefined {
  expireTokens(s);
  const t = liveToken(s, token);
  if (!t) return undefined;
  return { ttl: remainingTtl(s, t), renewable: t.renewable, policies: [...t.policies], accessor: t.accessor };
}

export function useToken(s: State, tok: TokenEntry): void {
  if (tok.numUses > 0) {
    tok.numUses--;
    if (tok.numUses === 0) revokeToken(s, tok.id);
  }
}

export function accessorOf(s: State, token: string): string | null {
  if (!token) return null;
  const t = s.tokens.get(token);
  if (t) return t.accessor;
  const w = s.wraps.get(token);
  if (w) return w.accessor;
  return s.deadTokenAccessors.get(token) ?? null;
}
