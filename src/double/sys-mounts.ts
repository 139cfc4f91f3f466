/**
 * sys/mounts and sys/auth: enabling, listing, reading and disabling secrets engines and auth
 * methods, as `vault secrets enable` / `vault auth enable` drive them. Only the engine types the
 * double implements can be mounted (kv v1/v2, pki, database; approle for auth); any other type is
 * refused with 400 like a type missing from Vault's plugin catalog.
 *
 * Not in the project's wire reference (../shared/vault-api.md covers neither sys/mounts, sys/auth
 * nor AppRole role writes): the status codes and error texts here are Vault's as remembered from its
 * source, unconfirmed, and kept on the strict side (root or an ACL grant for every write, 400 for a
 * path already in use). Check them against a real Vault before relying on their exact words.
 */
import { addMount, mountInfo } from "./model/mounts.js";
import type { Mount } from "./model/types.js";
import { mountDatabase, mountPki } from "./fixtures.js";
import { ME_UNSUPPORTED_OP, NO_CONTENT, err, ok } from "./result.js";
import type { Ctx, Result } from "./result.js";
import type { State } from "./state.js";
import { isObj, normMount, weakString } from "./util.js";
import type { Obj } from "./util.js";

/** Vault's router MountConflict: an existing mount that is a prefix of the new path, or under it. */
function conflict(s: State, path: string, auth: boolean): string | undefined {
  if (!auth && path.startsWith("auth/")) return "auth/";
  for (const p of s.mounts.keys()) if (path.startsWith(p) || p.startsWith(path)) return p;
  return undefined;
}

/** sys/mounts and sys/auth list a mount with the fields the UI preflight gives, plus its deprecation status. */
function mountEntry(m: Mount): Obj {
  // Vault's key order (alphabetical): deprecation_status goes between config and description.
  const { accessor, config, ...rest } = mountInfo(m, false);
  return { accessor, config, deprecation_status: "supported", ...rest };
}

function listing(s: State, auth: boolean): Result {
  const data: Obj = {};
  for (const m of s.mounts.values()) {
    const isAuth = m.path.startsWith("auth/");
    if (isAuth !== auth) continue;
    data[auth ? m.path.slice(5) : m.path] = mountEntry(m);
  }
  return ok({ data, mountType: "system" });
}

/** `rest` is the path after `sys/`: `mounts`, `mounts/<path>`, `auth` or `auth/<path>`. */
export function mountsApi(s: State, ctx: Ctx, rest: string): Result | undefined {
  const mm = /^(mounts|auth)(?:\/(.*))?$/.exec(rest);
  if (!mm) return undefined;
  const auth = mm[1] === "auth";
  const sub = mm[2] ?? "";
  if (sub.endsWith("/tune") || sub.includes("/tune/")) return undefined;
  const { op, body } = ctx;
  if (sub.replace(/\/+$/, "") === "") {
    if (op === "read") return listing(s, auth);
    return err(405, ME_UNSUPPORTED_OP);
  }
  const rel = normMount(sub);
  const path = auth ? `auth/${rel}` : rel;
  if (op === "read") {
    const m = s.mounts.get(path);
    if (!m) return err(400, `No ${auth ? "auth engine" : "secret engine"} mount at ${rel}`);
    return ok({ data: mountEntry(m), mountType: "system" });
  }
  if (op === "delete") {
    const m = s.mounts.get(path);
    if (m && (m.kind === "system" || m.kind === "token" || m.kind === "cubbyhole" || m.kind === "identity")) {
      return err(400, `cannot unmount "${rel}"`);
    }
    s.mounts.delete(path);
    return NO_CONTENT;
  }
  if (op !== "write") return err(405, ME_UNSUPPORTED_OP);

  let type = weakString(body["type"]);
  if (!type) return err(400, "backend type must be specified");
  const options: Obj = isObj(body["options"]) ? body["options"] : {};
  let version = weakString(options["version"]);
  if (type === "kv-v2") {
    type = "kv";
    version = "2";
  }
  const description = weakString(body["description"]);
  const known = auth ? ["approle"] : ["kv", "pki", "database"];
  if (!known.includes(type)) return err(400, `plugin not found in the catalog: ${type}`);
  if (type === "kv" && !["", "1", "2"].includes(version)) return err(400, `invalid version for kv: ${version}`);
  const hit = conflict(s, path, auth);
  if (hit) return err(400, `path is already in use at ${hit}`);

  if (type === "approle") addMount(s, path, "approle", "approle", description);
  else if (type === "kv") {
    const v2 = version === "2";
    const m = addMount(s, path, "kv", v2 ? "kv2" : "kv1", description, { version: v2 ? "2" : "1" });
    if (!v2 && version === "") m.options = null;
  } else if (type === "pki") {
    mountPki(s, path);
    const m = s.mounts.get(path);
    if (m) m.description = description;
  } else {
    mountDatabase(s, path);
    const m = s.mounts.get(path);
    if (m) m.description = description;
  }
  return NO_CONTENT;
}
