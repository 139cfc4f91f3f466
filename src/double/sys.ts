/** sys/ endpoints: health, policies, leases, the KV preflight (internal/ui/mounts) and wrapping. */
import { parseIncrement } from "./duration.js";
import { leaseLive, renewLease } from "./model/leases.js";
import { findMount, mountInfo } from "./model/mounts.js";
import { DEFAULT_POLICY_HCL, aclFor, addPolicy } from "./model/policies.js";
import { liveToken, useToken } from "./model/tokens.js";
import type { TokenEntry, WrapEntry } from "./model/types.js";
import { consumeWrap, liveWrap } from "./model/wrapping.js";
import { INVALID_WRAPPING_TOKEN, ME_INVALID_TOKEN, ME_PERMISSION_DENIED, ME_UNSUPPORTED_OP, ME_UNSUPPORTED_PATH, NOT_FOUND, NO_CONTENT, PERMISSION_DENIED, err, ok } from "./result.js";
import type { Ctx, Result } from "./result.js";
import type { State } from "./state.js";
import { mountsApi } from "./sys-mounts.js";
import { clone, fmtTime, goJson, listKeys, parseGoBool, parseGoInt, trimSlashes, weakString } from "./util.js";
import type { Obj } from "./util.js";

export function health(s: State, method: string, query: URLSearchParams): Result {
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
  if (!s.initialized) status = codes["uninitcode"] as number;
  else if (s.sealed) status = codes["sealedcode"] as number;
  else if (s.standby && !bools["standbyok"]) status = codes["standbycode"] as number;
  else status = codes["activecode"] as number;

  const sealedLike = s.sealed || !s.initialized;
  const body: Obj = {
    initialized: s.initialized,
    sealed: sealedLike,
    standby: sealedLike ? true : s.standby,
    performance_standby: false,
    replication_performance_mode: sealedLike ? "unknown" : "disabled",
    replication_dr_mode: sealedLike ? "unknown" : "disabled",
    server_time_utc: Math.floor(s.clock.now() / 1000),
    version: s.versionString,
    enterprise: false,
  };
  if (!sealedLike) {
    body["cluster_name"] = s.clusterName;
    body["cluster_id"] = s.clusterId;
  }
  body["echo_duration_ms"] = 0;
  body["clock_skew_ms"] = 0;
  body["replication_primary_canary_age_ms"] = 0;
  return { t: "bytes", status, body: method === "HEAD" ? "" : `${goJson(body)}\n` };
}

export function sys(s: State, ctx: Ctx, rest: string): Result {
  const { op, body } = ctx;
  const mounts = mountsApi(s, ctx, rest);
  if (mounts) return mounts;
  if (rest.startsWith("policies/acl/") || rest.startsWith("policy/")) {
    const name = trimSlashes(rest.replace(/^policies\/acl\/|^policy\//, ""));
    if (op === "read") {
      const p = s.policyText.get(name) ?? (name === "default" ? DEFAULT_POLICY_HCL : undefined);
      if (p === undefined) return NOT_FOUND;
      return ok({ data: { name, policy: p, rules: p }, mountType: "system" });
    }
    if (op === "write") {
      const text = weakString(body["policy"] ?? body["rules"]);
      if (text.trim() === "") return err(400, "'policy' parameter not supplied or empty");
      try {
        addPolicy(s, name, text);
      } catch (e) {
        return err(400, `failed to parse policy: ${(e as Error).message}`);
      }
      s.policyText.set(name, text);
      return NO_CONTENT;
    }
    if (op === "delete") {
      s.policies.delete(name);
      s.policyText.delete(name);
      s.aclCache.clear();
      return NO_CONTENT;
    }
    return err(405, ME_UNSUPPORTED_OP);
  }
  if (/^(leases\/)?revoke-(prefix|force)(\/|$)/.test(rest)) {
    if (op !== "write") return err(405, ME_UNSUPPORTED_OP);
    const prefix = rest.replace(/^(leases\/)?revoke-(prefix|force)\/?/, "");
    if (!prefix) return err(400, "prefix must be specified");
    for (const e of s.leases.values()) if (e.id.startsWith(prefix)) e.revoked = true;
    for (const [p, g] of s.generic) if (g.opts.leaseId?.startsWith(prefix)) s.generic.delete(p);
    return NO_CONTENT;
  }
  if (rest === "leases/revoke" || rest.startsWith("leases/revoke/") || rest === "revoke" || rest.startsWith("revoke/")) {
    if (op !== "write") return err(405, ME_UNSUPPORTED_OP);
    const leaseId = weakString(body["lease_id"]) || rest.replace(/^(leases\/)?revoke\/?/, "");
    if (!leaseId) return err(400, "lease_id must be specified");
    const e = s.leases.get(leaseId);
    if (e) e.revoked = true;
    for (const [p, g] of s.generic) if (g.opts.leaseId === leaseId) s.generic.delete(p);
    const sync = body["sync"];
    if (sync === false || sync === "false") return { t: "empty", status: 202 };
    return NO_CONTENT;
  }
  if (rest === "leases/renew" || rest.startsWith("leases/renew/") || rest === "renew" || rest.startsWith("renew/")) {
    if (op !== "write") return err(405, ME_UNSUPPORTED_OP);
    const leaseId = weakString(body["lease_id"]) || rest.replace(/^(leases\/)?renew\/?/, "");
    if (!leaseId) return err(400, "lease_id must be specified");
    if (s.tokens.has(leaseId)) return err(400, "tokens cannot be renewed through this endpoint");
    const parsed = parseIncrement(body["increment"]);
    if ("error" in parsed) return err(400, parsed.error);
    const inc = parsed.seconds;
    const e = s.leases.get(leaseId);
    if (e) return renewLease(s, e, inc);
    const g = [...s.generic.values()].find((x) => x.opts.leaseId === leaseId);
    if (!g) return err(400, "lease not found");
    if (!g.opts.renewable) return err(400, "lease is not renewable");
    return ok({ leaseId, renewable: true, leaseDuration: inc || (g.opts.leaseDuration ?? 0), data: null, mountType: "system" });
  }
  if (rest === "leases/lookup" || rest.startsWith("leases/lookup/")) {
    if (op === "list") {
      const prefix = rest.replace(/^leases\/lookup\/?/, "");
      const keys = listKeys(
        [...s.leases.values()].filter((e) => leaseLive(s, e)).map((e) => e.id),
        prefix,
      );
      return keys.length ? ok({ data: { keys }, mountType: "system" }) : NOT_FOUND;
    }
    if (op !== "write") return err(405, ME_UNSUPPORTED_OP);
    const leaseId = weakString(body["lease_id"]);
    if (!leaseId) return err(400, "lease_id must be specified");
    const e = s.leases.get(leaseId);
    if (!e || !leaseLive(s, e)) return err(400, "invalid lease");
    return ok({
      data: {
        expire_time: fmtTime({ ms: e.expireAtMs, ns: e.issue.ns }),
        id: e.id,
        issue_time: fmtTime(e.issue),
        last_renewal: e.lastRenewal ? fmtTime(e.lastRenewal) : null,
        renewable: e.renewable,
        ttl: Math.max(0, Math.round((e.expireAtMs - s.clock.now()) / 1000)),
      },
      mountType: "system",
    });
  }
  return err(404, ME_UNSUPPORTED_PATH);
}

/** GET sys/internal/ui/mounts/<path>: the KV preflight. */
export function preflight(s: State, ctx: Ctx): Result {
  if (ctx.op !== "read") return err(405, ME_UNSUPPORTED_OP);
  const tok = ctx.token as TokenEntry;
  const acl = tok.isRoot ? undefined : aclFor(s, tok.policies);
  const raw = ctx.path.replace(/^sys\/internal\/ui\/mounts\/?/, "");
  const sanitized = trimSlashes(raw);
  if (sanitized === "") {
    const secret: Obj = {};
    const auth: Obj = {};
    for (const m of s.mounts.values()) {
      if (acl && !acl.hasAnyAccessUnder(m.path)) continue;
      if (m.path.startsWith("auth/")) auth[m.path.slice(5)] = mountInfo(m, false);
      else secret[m.path] = mountInfo(m, false);
    }
    return ok({ data: { auth, secret }, mountType: "system" });
  }
  const m = findMount(s, sanitized);
  if (!m || (acl && !acl.hasAnyAccessUnder(m.path))) {
    return err(
      403,
      `preflight capability check returned 403, please ensure client's policies grant access to path "${sanitized}/"`,
    );
  }
  return ok({ data: mountInfo(m, true), mountType: "system" });
}

export function unwrap(s: State, ctx: Ctx): Result {
  const bodyToken = weakString(ctx.body["token"]);
  const header = ctx.headerToken;
  if (!header) return err(403, PERMISSION_DENIED);
  if (ctx.op !== "write") {
    if (liveWrap(s, header) || liveToken(s, header)) return err(405, ME_UNSUPPORTED_OP);
    return err(403, ME_INVALID_TOKEN);
  }
  const headerWrap = liveWrap(s, header);
  if (headerWrap) {
    // The wrapping token authenticates the call and is used up by that.
    consumeWrap(s, header);
    if (!bodyToken) return unwrapResult(headerWrap);
    if (bodyToken === header) return err(400, INVALID_WRAPPING_TOKEN);
    const w = consumeWrap(s, bodyToken);
    return w ? unwrapResult(w) : err(400, INVALID_WRAPPING_TOKEN);
  }
  const tok = liveToken(s, header);
  if (!tok) {
    // Form A with a used, expired or unknown wrapping token.
    if (!bodyToken) return err(400, INVALID_WRAPPING_TOKEN);
    return err(403, ME_INVALID_TOKEN);
  }
  useToken(s, tok);
  if (!tok.isRoot && !aclFor(s, tok.policies).allows("sys/wrapping/unwrap", "update")) return err(403, ME_PERMISSION_DENIED);
  if (!bodyToken) return err(400, INVALID_WRAPPING_TOKEN);
  const w = consumeWrap(s, bodyToken);
  return w ? unwrapResult(w) : err(400, INVALID_WRAPPING_TOKEN);
}

function unwrapResult(w: WrapEntry): Result {
  const env = clone(w.env);
  delete env.requestId;
  return ok(env);
}

export function wrappingLookup(s: State, ctx: Ctx): Result {
  if (ctx.op !== "write" && ctx.op !== "read") return err(405, ME_UNSUPPORTED_OP);
  const token = weakString(ctx.body["token"]);
  if (!token) return err(400, `missing "token" value in input`);
  const w = liveWrap(s, token);
  if (!w) return err(400, INVALID_WRAPPING_TOKEN);
  return ok({
    data: { creation_path: w.creationPath, creation_time: fmtTime(w.created), creation_ttl: w.ttl },
    mountType: "system",
  });
}
