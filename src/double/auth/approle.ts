/** The AppRole auth method: login, role-id, secret-id generation, lookup and destroy. */
import { randomUUID } from "node:crypto";
import { parseDurationSecond } from "../duration.js";
import { newToken } from "../model/tokens.js";
import type { AppRole, Env, Mount, SecretIdEntry } from "../model/types.js";
import { addMount } from "../model/mounts.js";
import { INVALID_ROLE_OR_SECRET, ME_UNSUPPORTED_OP, ME_UNSUPPORTED_PATH, NOT_FOUND, NO_CONTENT, err, ok } from "../result.js";
import type { Ctx, Result } from "../result.js";
import type { State } from "../state.js";
import { fmtTime, isObj, normMount, weakInt, weakString } from "../util.js";
import type { Obj } from "../util.js";
import { authBlock } from "./token.js";

export function approleMount(s: State, mount = "approle", create = false): Mount {
  const p = `auth/${normMount(mount)}`;
  let m = s.mounts.get(p);
  if (!m && create) m = addMount(s, p, "approle", "approle", "");
  if (!m || m.kind !== "approle") throw new Error(`no approle mount at ${p}`);
  return m;
}

export function newSecretId(s: State, role: AppRole, o: { ttl?: number; numUses?: number; metadata?: Record<string, string> } = {}): SecretIdEntry {
  const created = s.clock.stamp();
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

export function secretIdEnv(e: SecretIdEntry): Env {
  return {
    data: { secret_id: e.secretId, secret_id_accessor: e.accessor, secret_id_num_uses: e.numUses, secret_id_ttl: e.ttl },
    mountType: "approle",
  };
}

export function secretIdLive(s: State, e: SecretIdEntry): boolean {
  return e.expireAtMs === null || s.clock.now() < e.expireAtMs;
}

export function approleLogin(s: State, ctx: Ctx, m: Mount): Result {
  if (ctx.op !== "write") return err(405, ME_UNSUPPORTED_OP);
  const roleId = weakString(ctx.body["role_id"]).trim();
  if (!roleId) return err(400, "missing role_id");
  const role = [...m.roles.values()].find((r) => r.roleId === roleId);
  if (!role) return err(400, INVALID_ROLE_OR_SECRET);
  const secretId = weakString(ctx.body["secret_id"]).trim();
  if (!secretId) return err(400, "missing secret_id");
  const sid = role.secretIds.get(secretId);
  if (!sid) return err(400, INVALID_ROLE_OR_SECRET);
  if (sid.expireAtMs !== null && s.clock.now() >= sid.expireAtMs) {
    role.secretIds.delete(secretId);
    return err(400, INVALID_ROLE_OR_SECRET);
  }
  if (sid.usesLeft > 0) {
    sid.usesLeft--;
    if (sid.usesLeft === 0) role.secretIds.delete(secretId);
  }
  const mountName = m.path.slice("auth/".length, -1);
  const t = newToken(s, {
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
  return ok({ data: null, auth: authBlock(t, t.creationTtl), mountType: "" }, { wrappedAccessor: t.accessor || undefined });
}

export function approle(s: State, ctx: Ctx, m: Mount, rest: string): Result {
  const { op, body } = ctx;
  const mm = /^role\/([^/]+)\/(role-id|secret-id|secret-id\/lookup|secret-id\/destroy|secret-id-accessor\/lookup|secret-id-accessor\/destroy)\/?$/.exec(rest);
  if (!mm) {
    const rm = /^role\/([^/]+)\/?$/.exec(rest);
    if (rm) return roleCrud(s, ctx, m, rm[1] as string);
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
      const e = newSecretId(s, role, { ttl, numUses, metadata });
      return ok(secretIdEnv(e), { wrappedAccessor: e.accessor });
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
      if (!sid || !secretIdLive(s, sid)) return err(400, `failed to find accessor entry for secret_id_accessor: ${JSON.stringify(accessor)}`);
      if (destroy) {
        role.secretIds.delete(sid.secretId);
        return NO_CONTENT;
      }
      return ok({ data: secretIdLookupData(sid), mountType: "approle" });
    }
    default: {
      // secret-id/lookup
      if (op !== "write") return err(405, ME_UNSUPPORTED_OP);
      const secretId = weakString(body["secret_id"]).trim();
      if (!secretId) return err(400, "missing secret_id");
      if (!role) return err(400, `role name "${roleName}" doesn't exist`);
      const sid = role.secretIds.get(secretId);
      if (!sid || !secretIdLive(s, sid)) return NO_CONTENT;
      return ok({ data: secretIdLookupData(sid), mountType: "approle" });
    }
  }
}

const ROLE_NAME = /^\w(([\w.-]+)?\w)?$/;

function policyList(v: unknown): string[] | undefined {
  if (v === undefined) return undefined;
  const list = Array.isArray(v) ? v.map((x) => weakString(x)) : weakString(v).split(",");
  return [...new Set(list.map((x) => x.trim().toLowerCase()).filter((x) => x !== ""))].sort();
}

/** auth/<mount>/role/<role>: create or update (204), read (200), delete (204); path_role.go. */
function roleCrud(s: State, ctx: Ctx, m: Mount, roleName: string): Result {
  const { op, body } = ctx;
  const role = m.roles.get(roleName);
  if (op === "read") {
    if (!role) return NOT_FOUND;
    return ok({
      data: {
        bind_secret_id: true,
        local_secret_ids: false,
        policies: [...role.policies],
        secret_id_bound_cidrs: null,
        secret_id_num_uses: role.secretIdNumUses,
        secret_id_ttl: role.secretIdTtl,
        token_bound_cidrs: [],
        token_explicit_max_ttl: 0,
        token_max_ttl: role.tokenMaxTtl,
        token_no_default_policy: false,
        token_num_uses: 0,
        token_period: role.tokenPeriod,
        token_policies: [...role.policies],
        token_ttl: role.tokenTtl,
        token_type: role.tokenType === "service" ? "default" : role.tokenType,
      },
      mountType: "approle",
    });
  }
  if (op === "delete") {
    m.roles.delete(roleName);
    return NO_CONTENT;
  }
  if (op !== "write") return err(405, ME_UNSUPPORTED_OP);
  if (!ROLE_NAME.test(roleName)) return err(404, ME_UNSUPPORTED_PATH); // no route matches the name
  const next: AppRole = role
    ? { ...role }
    : {
        roleName,
        roleId: randomUUID(),
        policies: [],
        tokenTtl: 0,
        tokenMaxTtl: 0,
        tokenPeriod: 0,
        tokenType: "service",
        secretIdTtl: 0,
        secretIdNumUses: 0,
        entityId: randomUUID(),
        secretIds: new Map(),
      };
  try {
    const dur = (k: string, cur: number): number => (body[k] === undefined ? cur : parseDurationSecond(body[k]));
    next.tokenTtl = dur("token_ttl", next.tokenTtl);
    next.tokenMaxTtl = dur("token_max_ttl", next.tokenMaxTtl);
    next.tokenPeriod = dur("token_period", dur("period", next.tokenPeriod));
    next.secretIdTtl = dur("secret_id_ttl", next.secretIdTtl);
  } catch (e) {
    return err(400, (e as Error).message);
  }
  if (body["secret_id_num_uses"] !== undefined) {
    const n = weakInt(body["secret_id_num_uses"]);
    if (n === undefined) return err(400, `error converting input ${weakString(body["secret_id_num_uses"])} for field "secret_id_num_uses"`);
    if (n < 0) return err(400, "secret_id_num_uses cannot be negative");
    next.secretIdNumUses = n;
  }
  const pols = policyList(body["token_policies"]) ?? policyList(body["policies"]);
  if (pols) next.policies = pols;
  if (body["token_type"] !== undefined) {
    const tt = weakString(body["token_type"]);
    if (tt === "batch") next.tokenType = "batch";
    else if (tt === "service" || tt === "default" || tt === "default-service") next.tokenType = "service";
    else return err(400, `invalid 'token_type' value ${JSON.stringify(tt)}`);
  }
  if (body["role_id"] !== undefined) {
    const rid = weakString(body["role_id"]);
    if (!rid) return err(400, "missing role_id");
    next.roleId = rid;
  }
  if (next.tokenMaxTtl > 0 && next.tokenTtl > next.tokenMaxTtl) return err(400, "token_ttl should not be greater than token_max_ttl");
  m.roles.set(roleName, next);
  return NO_CONTENT;
}

function secretIdLookupData(sid: SecretIdEntry): Obj {
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
