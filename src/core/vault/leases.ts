/**
 * Leased dynamic secrets. A lease is fetched once and then follows its own lifecycle across cron
 * runs: kept while healthy, renewed when renewable and past its threshold, replaced (new
 * credentials, old lease revoked after the new files are committed and hooks have run) when not
 * renewable, near its max TTL, or gone. Lease ids and expiries live in state; the credentials
 * themselves in agent-only/leases.json (0600), which is as private as the token beside it.
 */
import path from "node:path";
import { VrError } from "../support/errors.js";
import { parseDuration } from "../support/duration.js";
import type { SourceSpec } from "../layout/schema.js";
import type { State } from "../state/state.js";
import type { CurrentToken } from "./token-horizon.js";
import { leaseOwnerGone } from "./token-horizon.js";
import type { VaultClient } from "./client.js";
import { VaultRequestError } from "./client.js";
import { readPrivate, writePrivate } from "../fs/writer.js";

export type LeaseSpec = Extract<SourceSpec, { type: "lease" }>;

export interface LeaseRecord {
  leaseId: string;
  path: string;
  issuedAt: number;
  expiresAt: number;
  /** The lease's duration (seconds) when issued: the base of fraction thresholds. */
  duration: number;
  renewable: boolean;
  /** The token whose request created it (keyed hash), its accessor and when it is gone at the latest. */
  tokenId?: string;
  tokenAccessor?: string;
  tokenExpiresAt?: number | null;
}

export type LeaseDecision = "keep" | "renew" | "replace";

export interface LeaseOutcome {
  data: Record<string, unknown>;
  action: "kept" | "renewed" | "replaced";
  /** A lease that must be revoked once the new credentials are committed and hooks have run. */
  oldLeaseId?: string;
  reason?: string;
}

type Cache = Record<string, { leaseId: string; data: Record<string, unknown> }>;

export class LeaseStore {
  readonly file: string;
  private cache: Cache | null = null;
  constructor(agentDir: string) {
    this.file = path.join(agentDir, "leases.json");
  }
  async load(): Promise<Cache> {
    if (this.cache) return this.cache;
    const buf = await readPrivate(this.file);
    try {
      // Without a prototype, so a lease source named "constructor" is only itself.
      this.cache = Object.assign(Object.create(null) as Cache, buf ? (JSON.parse(buf.toString("utf8")) as Cache) : {});
    } catch {
      this.cache = Object.create(null) as Cache;
    }
    return this.cache;
  }
  async save(): Promise<void> {
    await writePrivate(this.file, JSON.stringify(this.cache ?? {}) + "\n");
  }
}

export function thresholdMs(spec: LeaseSpec, durationSec: number): number {
  const rb = spec.renewBefore ?? 0.5;
  return typeof rb === "number" ? rb * durationSec * 1000 : parseDuration(rb);
}

/** `token`: the token this run holds; a lease created by another one dies with that one (token-horizon.ts). */
export function decideLease(
  spec: LeaseSpec,
  rec: LeaseRecord | undefined,
  cached: { leaseId: string } | undefined,
  now: number,
  force: boolean,
  token?: CurrentToken,
): { decision: LeaseDecision; reason: string } {
  if (force) return { decision: "replace", reason: "rotation requested" };
  if (!rec || !cached || cached.leaseId !== rec.leaseId) return { decision: "replace", reason: "no current lease" };
  if (rec.path !== spec.path) return { decision: "replace", reason: "the layout's path changed" };
  const remaining = rec.expiresAt - now;
  if (remaining <= 0) return { decision: "replace", reason: "the lease expired" };
  const gone = leaseOwnerGone(rec, token);
  if (gone) return { decision: "replace", reason: gone };
  if (remaining > thresholdMs(spec, rec.duration)) return { decision: "keep", reason: "healthy" };
  return rec.renewable ? { decision: "renew", reason: "past its renewal threshold" } : { decision: "replace", reason: "not renewable and near expiry" };
}

/** Keep, renew or replace one lease source; state and the credential cache are saved before returning. */
export async function resolveLease(
  name: string,
  spec: LeaseSpec,
  ctx: {
    client: VaultClient;
    state: State;
    store: LeaseStore;
    now: () => number;
    force: boolean;
    saveState: () => Promise<void>;
    warn?: (msg: string) => void;
    /** The token this run holds: recorded as the creator of new leases. */
    token?: CurrentToken;
    /** Called before new credentials of a life `ttlMs` are read: a fresher token to read them with, if any. */
    freshToken?: (ttlMs: number) => Promise<CurrentToken | undefined>;
  },
): Promise<LeaseOutcome> {
  const cache = await ctx.store.load();
  const rec = ctx.state.leases[name];
  let { decision, reason } = decideLease(spec, rec, cache[name], ctx.now(), ctx.force, ctx.token);
  if (decision === "keep") return { data: (cache[name] as { data: Record<string, unknown> }).data, action: "kept" };
  if (decision === "renew" && rec) {
    try {
      const res = await ctx.client.renewLease(rec.leaseId, rec.duration);
      const ttl = Number(res.lease_duration ?? 0);
      const expiresAt = ctx.now() + ttl * 1000;
      if (ttl > 0 && expiresAt - ctx.now() > thresholdMs(spec, rec.duration)) {
        ctx.state.leases[name] = { ...rec, expiresAt, renewable: res.renewable !== false };
        await ctx.saveState();
        return { data: (cache[name] as { data: Record<string, unknown> }).data, action: "renewed" };
      }
      reason = "renewal cannot extend it past the threshold (max TTL)";
    } catch (e) {
      if (e instanceof VaultRequestError && e.unavailable) throw e;
      reason = `renewal refused (${e instanceof Error ? e.message : "error"})`;
      if (e instanceof VaultRequestError && e.kind === "permission") ctx.warn?.(`lease ${name}: ${e.message}; replacing the credentials instead of renewing them`);
    }
    decision = "replace";
  }
  // The new lease lives about as long as the last one did.
  const fresher = rec && ctx.freshToken ? await ctx.freshToken(rec.duration * 1000) : undefined;
  if (fresher) ctx.token = fresher;
  // Each read creates credentials (and a lease): retried only when it cannot have reached Vault.
  const res = await ctx.client.read(spec.path, { sideEffect: true });
  if (!res.lease_id) {
    throw new VrError("RENDER", `read ${spec.path}: the answer carries no lease; use a "kv" or "read" source for it`);
  }
  const data = (res.data ?? {});
  const now = ctx.now();
  const duration = Number(res.lease_duration ?? 0);
  const owner = ctx.token ? { tokenId: ctx.token.id, tokenAccessor: ctx.token.accessor, tokenExpiresAt: ctx.token.goneBy } : {};
  ctx.state.leases[name] = { leaseId: res.lease_id, path: spec.path, issuedAt: now, expiresAt: now + duration * 1000, duration, renewable: res.renewable === true, ...owner };
  cache[name] = { leaseId: res.lease_id, data };
  // New credentials are persisted before any file is written with them.
  await ctx.store.save();
  await ctx.saveState();
  return { data, action: "replaced", oldLeaseId: rec && rec.leaseId !== res.lease_id ? rec.leaseId : undefined, reason };
}

export async function revokeLease(client: VaultClient, leaseId: string): Promise<void> {
  await client.revokeLease(leaseId);
}
