/** KV secrets engines: version 1 and version 2 (data, metadata, delete/undelete/destroy, subkeys, config). */
import { goDuration, parseDurationSecond } from "../duration.js";
import { DEFAULT_LEASE_TTL } from "../model/types.js";
import type { KvKey, KvVersion, Mount } from "../model/types.js";
import { ME_UNSUPPORTED_OP, NOT_FOUND, NO_CONTENT, err, ok } from "../result.js";
import type { Ctx, Result } from "../result.js";
import type { State } from "../state.js";
import { clone, fmtTime, isObj, listKeys, trimSlashes, versionList, weakInt, weakString } from "../util.js";
import type { Obj } from "../util.js";

export function kv1(ctx: Ctx, m: Mount, rest: string): Result {
  const { op, body } = ctx;
  const key = rest.replace(/^\/+/, "");
  switch (op) {
    case "read": {
      const d = m.kv1.get(key);
      if (!d) return NOT_FOUND;
      let lease = DEFAULT_LEASE_TTL;
      const ttlRaw = d["ttl"] ?? d["lease"];
      if (ttlRaw !== undefined) {
        try {
          const n = parseDurationSecond(ttlRaw);
          if (n > 0) lease = n;
        } catch {
          // not a duration: default TTL
        }
      }
      return ok({ leaseDuration: lease, data: clone(d), mountType: "kv" });
    }
    case "list": {
      const keys = listKeys([...m.kv1.keys()], key);
      return keys.length ? ok({ data: { keys }, mountType: "kv" }) : NOT_FOUND;
    }
    case "write":
      if (Object.keys(body).length === 0) return err(400, "missing data fields");
      m.kv1.set(key, clone(body));
      return NO_CONTENT;
    case "delete":
      m.kv1.delete(key);
      return NO_CONTENT;
    default:
      return err(405, ME_UNSUPPORTED_OP);
  }
}

export function isDeleted(s: State, v: KvVersion): boolean {
  return v.deletion !== null && v.deletion.ms <= s.clock.now();
}

function versionMeta(k: KvKey, n: number, v: KvVersion): Obj {
  return {
    created_time: fmtTime(v.created),
    custom_metadata: k.customMetadata ? { ...k.customMetadata } : null,
    deletion_time: v.deletion ? fmtTime(v.deletion) : "",
    destroyed: v.destroyed,
    version: n,
  };
}

export function kv2Write(s: State, m: Mount, key: string, data: Obj): { version: number; meta: Obj } {
  const now = s.clock.stamp();
  let k = m.kv2.get(key);
  if (!k) {
    k = {
      created: now,
      updated: now,
      current: 0,
      versions: new Map(),
      customMetadata: null,
      maxVersions: 0,
      casRequired: false,
      deleteVersionAfter: "0s",
    };
    m.kv2.set(key, k);
  }
  k.current += 1;
  k.updated = now;
  const v: KvVersion = { created: now, deletion: null, destroyed: false, data };
  k.versions.set(k.current, v);
  const max = k.maxVersions || m.kv2Config.maxVersions || 10;
  for (const n of [...k.versions.keys()].sort((a, b) => a - b)) {
    if (k.versions.size <= max) break;
    k.versions.delete(n);
  }
  return { version: k.current, meta: versionMeta(k, k.current, v) };
}

export function kv2SoftDelete(s: State, k: KvKey, versions: number[]): void {
  const now = s.clock.stamp();
  for (const n of versions) {
    const v = k.versions.get(n);
    if (v && !v.destroyed && !isDeleted(s, v)) v.deletion = now;
  }
  k.updated = now;
}

export function kv2Undelete(s: State, k: KvKey, versions: number[]): void {
  for (const n of versions) {
    const v = k.versions.get(n);
    if (v && !v.destroyed) v.deletion = null;
  }
  k.updated = s.clock.stamp();
}

export function kv2Destroy(s: State, k: KvKey, versions: number[]): void {
  for (const n of versions) {
    const v = k.versions.get(n);
    if (v) {
      v.destroyed = true;
      v.data = null;
    }
  }
  k.updated = s.clock.stamp();
}

export function kv2(s: State, ctx: Ctx, m: Mount, rest: string): Result {
  const { op, body } = ctx;
  const slash = rest.indexOf("/");
  const section = slash < 0 ? rest : rest.slice(0, slash);
  const key = slash < 0 ? "" : rest.slice(slash + 1);
  const verb = { read: "get", list: "list", write: "put", delete: "delete", patch: "patch" }[op];
  const invalid = (msg: string): Result => ({
    t: "env",
    status: 404,
    raw: true,
    env: { data: null, warnings: [msg], mountType: "" },
  });
  const invalidPath = (): Result =>
    invalid(
      `Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv ${verb}' for this operation.`,
    );
  const rootOp = (): Result => invalid("Non-listing operations on the root of a K/V v2 mount are not supported.");

  if (section === "config" && key === "") {
    if (op === "read") {
      const c = m.kv2Config;
      return ok({ data: { cas_required: c.casRequired, delete_version_after: c.deleteVersionAfter, max_versions: c.maxVersions }, mountType: "kv" });
    }
    if (op === "write") {
      if (body["cas_required"] !== undefined) m.kv2Config.casRequired = body["cas_required"] === true || body["cas_required"] === "true";
      const mv = weakInt(body["max_versions"]);
      if (mv !== undefined) m.kv2Config.maxVersions = mv;
      return NO_CONTENT;
    }
    return err(405, ME_UNSUPPORTED_OP);
  }

  const k = m.kv2.get(trimSlashes(key));
  switch (section) {
    case "data": {
      if (op === "list") return invalidPath();
      if (trimSlashes(key) === "") return rootOp();
      if (op === "read") {
        if (!k) return NOT_FOUND;
        let n = k.current;
        const vq = ctx.query.get("version");
        if (vq !== null && vq !== "") {
          const parsed = weakInt(vq);
          if (parsed === undefined) return err(400, `error converting input ${vq} for field "version"`);
          if (parsed > 0) n = parsed;
        }
        const v = k.versions.get(n);
        if (!v || n > k.current) return NOT_FOUND;
        if (v.destroyed || isDeleted(s, v)) {
          return { t: "env", status: 404, raw: true, env: { data: { data: null, metadata: versionMeta(k, n, v) }, mountType: "" } };
        }
        return ok({ data: { data: clone(v.data), metadata: versionMeta(k, n, v) }, mountType: "kv" });
      }
      if (op === "write" || op === "patch") {
        const data = body["data"];
        if (!isObj(data)) return err(400, "no data provided");
        const options = isObj(body["options"]) ? body["options"] : {};
        const casRaw = options["cas"];
        const cas = casRaw === undefined ? undefined : weakInt(casRaw);
        if (casRaw !== undefined && cas === undefined) return err(400, "check-and-set parameter did not match the current version");
        const casRequired = m.kv2Config.casRequired || (k?.casRequired ?? false);
        if (op === "patch") {
          if (!k) return NOT_FOUND;
          const cur = k.versions.get(k.current);
          if (!cur || cur.destroyed || isDeleted(s, cur) || !cur.data) return NOT_FOUND;
          if (cas === undefined && casRequired) return err(400, "check-and-set parameter required for this call");
          if (cas !== undefined && cas !== k.current) return err(400, "check-and-set parameter did not match the current version");
          const merged = mergePatch(clone(cur.data), data) as Obj;
          return ok({ data: kv2Write(s, m, trimSlashes(key), merged).meta, mountType: "kv" });
        }
        if (cas === undefined && casRequired) return err(400, "check-and-set parameter required for this call");
        if (cas !== undefined && cas !== (k?.current ?? 0)) return err(400, "check-and-set parameter did not match the current version");
        return ok({ data: kv2Write(s, m, trimSlashes(key), clone(data)).meta, mountType: "kv" });
      }
      if (op === "delete") {
        if (k) kv2SoftDelete(s, k, [k.current]);
        return NO_CONTENT;
      }
      return err(405, ME_UNSUPPORTED_OP);
    }
    case "metadata": {
      if (op === "list") {
        const keys = listKeys([...m.kv2.keys()], key);
        return keys.length ? ok({ data: { keys }, mountType: "kv" }) : NOT_FOUND;
      }
      if (trimSlashes(key) === "") return rootOp();
      if (op === "read") {
        if (!k) return NOT_FOUND;
        const versions: Obj = {};
        for (const [n, v] of k.versions) {
          versions[String(n)] = { created_time: fmtTime(v.created), deletion_time: v.deletion ? fmtTime(v.deletion) : "", destroyed: v.destroyed };
        }
        const nums = [...k.versions.keys()];
        return ok({
          data: {
            cas_required: k.casRequired,
            created_time: fmtTime(k.created),
            current_version: k.current,
            custom_metadata: k.customMetadata ? { ...k.customMetadata } : null,
            delete_version_after: k.deleteVersionAfter,
            max_versions: k.maxVersions,
            oldest_version: nums.length ? Math.min(...nums) : 0,
            updated_time: fmtTime(k.updated),
            versions,
          },
          mountType: "kv",
        });
      }
      if (op === "write" || op === "patch") {
        const now = s.clock.stamp();
        let kk = k;
        if (!kk) {
          if (op === "patch") return NOT_FOUND;
          kk = { created: now, updated: now, current: 0, versions: new Map(), customMetadata: null, maxVersions: 0, casRequired: false, deleteVersionAfter: "0s" };
          m.kv2.set(trimSlashes(key), kk);
        }
        if (isObj(body["custom_metadata"])) {
          kk.customMetadata = Object.fromEntries(Object.entries(body["custom_metadata"]).map(([a, b]) => [a, weakString(b)]));
        }
        const mv = weakInt(body["max_versions"]);
        if (mv !== undefined) kk.maxVersions = mv;
        if (body["cas_required"] !== undefined) kk.casRequired = body["cas_required"] === true || body["cas_required"] === "true";
        if (body["delete_version_after"] !== undefined) {
          try {
            kk.deleteVersionAfter = goDuration(parseDurationSecond(body["delete_version_after"]));
          } catch (e) {
            return err(400, (e as Error).message);
          }
        }
        kk.updated = now;
        return NO_CONTENT;
      }
      if (op === "delete") {
        m.kv2.delete(trimSlashes(key));
        return NO_CONTENT;
      }
      return err(405, ME_UNSUPPORTED_OP);
    }
    case "delete":
    case "undelete":
    case "destroy": {
      if (op === "list") return invalidPath();
      if (trimSlashes(key) === "") return rootOp();
      if (op !== "write") return err(405, ME_UNSUPPORTED_OP);
      const versions = versionList(body["versions"]);
      if (!versions || versions.length === 0) return err(400, "no version number provided");
      if (k) {
        if (section === "delete") kv2SoftDelete(s, k, versions);
        else if (section === "undelete") kv2Undelete(s, k, versions);
        else kv2Destroy(s, k, versions);
      }
      return NO_CONTENT;
    }
    case "subkeys": {
      if (trimSlashes(key) === "") return rootOp();
      if (op !== "read") return err(405, ME_UNSUPPORTED_OP);
      if (!k) return NOT_FOUND;
      const vq = weakInt(ctx.query.get("version") ?? "") ?? 0;
      const n = vq > 0 ? vq : k.current;
      const v = k.versions.get(n);
      if (!v || v.destroyed || isDeleted(s, v) || !v.data) return NOT_FOUND;
      return ok({ data: { metadata: versionMeta(k, n, v), subkeys: subkeys(v.data) }, mountType: "kv" });
    }
    default:
      return invalidPath();
  }
}

/** RFC 7396 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return patch;
  const out: Obj = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function subkeys(v: Obj): Obj {
  const out: Obj = {};
  for (const [k, x] of Object.entries(v)) out[k] = isObj(x) ? subkeys(x) : null;
  return out;
}
