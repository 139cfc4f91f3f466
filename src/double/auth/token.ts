/** The token auth backend (auth/token/): lookup, renew, revoke and create. */
import { goDuration, parseDurationSecond, parseIncrement } from "../duration.js";
import { liveToken, newToken, remainingTtl, revokeToken } from "../model/tokens.js";
import type { TokenEntry } from "../model/types.js";
import { ME_INVALID_TOKEN, ME_UNSUPPORTED_OP, ME_UNSUPPORTED_PATH, NO_CONTENT, err, ok } from "../result.js";
import type { Ctx, Result } from "../result.js";
import type { State } from "../state.js";
import { fmtTime, isObj, sortDeep, trimSlashes, weakInt, weakString } from "../util.js";
import type { Obj } from "../util.js";

export function authBlock(t: TokenEntry, leaseDuration: number): Obj {
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

function lookupData(s: State, t: TokenEntry): Obj {
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
    ttl: remainingTtl(s, t),
    type: t.type,
  };
  if (t.period > 0) d["period"] = t.period;
  if (t.lastRenewal) {
    d["last_renewal"] = fmtTime(t.lastRenewal);
    d["last_renewal_time"] = Math.floor(t.lastRenewal.ms / 1000);
  }
  return d;
}

export function tokenBackend(s: State, ctx: Ctx, rest: string): Result {
  const tok = ctx.token as TokenEntry;
  const { op, body } = ctx;
  switch (trimSlashes(rest)) {
    case "lookup-self":
      if (op !== "read" && op !== "write") return err(405, ME_UNSUPPORTED_OP);
      return ok({ data: lookupData(s, tok), mountType: "token" });
    case "lookup": {
      if (op !== "read" && op !== "write") return err(405, ME_UNSUPPORTED_OP);
      const other = weakString(body["token"]);
      if (!other) return err(400, "missing token");
      const t = liveToken(s, other);
      if (!t) return err(403, ME_INVALID_TOKEN);
      return ok({ data: lookupData(s, t), mountType: "token" });
    }
    case "renew-self":
      if (op !== "write") return err(405, ME_UNSUPPORTED_OP);
      return renewToken(s, tok, body);
    case "renew": {
      if (op !== "write") return err(405, ME_UNSUPPORTED_OP);
      const t = liveToken(s, weakString(body["token"]));
      if (!t) return err(400, "lease not found");
      return renewToken(s, t, body);
    }
    case "revoke-self":
      if (op !== "write") return err(405, ME_UNSUPPORTED_OP);
      revokeToken(s, tok.id);
      return NO_CONTENT;
    case "revoke":
      if (op !== "write") return err(405, ME_UNSUPPORTED_OP);
      revokeToken(s, weakString(body["token"]));
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
      const t = newToken(s, {
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
      return ok({ data: null, auth: authBlock(t, remainingTtl(s, t)), mountType: "token" }, { wrappedAccessor: t.accessor || undefined });
    }
    default:
      return err(404, ME_UNSUPPORTED_PATH);
  }
}

function renewToken(s: State, t: TokenEntry, body: Obj): Result {
  if (!t.renewable || t.expireAtMs === null || t.type === "batch") return err(400, "lease is not renewable");
  const parsed = parseIncrement(body["increment"]);
  if ("error" in parsed) return err(400, parsed.error);
  let inc = parsed.seconds;
  if (inc <= 0) inc = t.creationTtl;
  // A periodic token is renewed to its period, whatever the increment (CalculateTTL).
  if (t.period > 0) inc = t.period;
  const now = s.clock.now();
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
  t.lastRenewal = s.clock.stamp();
  return ok({ data: null, warnings, auth: authBlock(t, ttl), mountType: "token" });
}
