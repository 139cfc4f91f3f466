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
