/**
 * Routing: builds the logical request (operation, body, X-Vault-Wrap-TTL) as Vault's
 * http/logical.go does, authenticates and authorizes it, and hands it to the mount's engine.
 */
import type http from "node:http";
import type { Capability } from "./acl.js";
import { approle, approleLogin } from "./auth/approle.js";
import { tokenBackend } from "./auth/token.js";
import { parseDurationSecond } from "./duration.js";
import { database } from "./engines/database.js";
import { genericMount, genericOp } from "./engines/generic.js";
import { kv1, kv2 } from "./engines/kv.js";
import { pki } from "./engines/pki.js";
import { findMount } from "./model/mounts.js";
import { aclFor } from "./model/policies.js";
import { expireTokens, liveToken, useToken } from "./model/tokens.js";
import type { Mount } from "./model/types.js";
import { liveWrap } from "./model/wrapping.js";
import { ME_INVALID_TOKEN, ME_PERMISSION_DENIED, NOT_FOUND, PERMISSION_DENIED, err } from "./result.js";
import type { Ctx, Op, Result } from "./result.js";
import type { State } from "./state.js";
import { health, preflight, sys, unwrap, wrappingLookup } from "./sys.js";
import { isObj, parseGoBool, trimSlashes } from "./util.js";
import type { Obj } from "./util.js";

export function dispatch(
  s: State,
  req: http.IncomingMessage,
  method: string,
  rawPath: string,
  query: URLSearchParams,
  buf: Buffer,
  headerToken: string,
  hasV1: boolean,
  wrap: { ttl?: number },
): Result | Promise<Result> {
  if (!hasV1) return NOT_FOUND;
  expireTokens(s);
  if (!["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"].includes(method)) return err(405);
  if (rawPath === "sys/health") return health(s, method, query);
  // A standby forwards before the request is parsed; this double has nobody to forward to.
  if (s.standby && s.initialized && !s.sealed) return err(503, "node is not active");
  if (method === "HEAD" || method === "OPTIONS") return err(405);

  // Operation (http/logical.go buildLogicalRequestNoAuth)
  let op: Op;
  let path = rawPath;
  if (method === "GET") {
    op = "read";
    const listRaw = query.get("list");
    if (listRaw !== null && listRaw !== "") {
      const b = parseGoBool(listRaw);
      if (b === undefined) return err(400);
      if (b) {
        op = "list";
        if (!path.endsWith("/")) path += "/";
      }
    }
  } else if (method === "DELETE") op = "delete";
  else if (method === "PATCH") {
    op = "patch";
    const ct = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
    if (ct !== "application/merge-patch+json") {
      return err(415, `PATCH requires Content-Type of application/merge-patch+json, provided ${ct}`);
    }
  } else op = "write";

  // Body
  let body: Obj = {};
  if (op === "write" || op === "patch") {
    const text = buf.toString("utf8");
    if (text.trim() !== "") {
      const ct = (req.headers["content-type"] ?? "").toLowerCase();
      const first = text.trimStart()[0];
      if (ct.startsWith("application/x-www-form-urlencoded") && first !== "{" && first !== "[") {
        body = Object.fromEntries(new URLSearchParams(text));
      } else {
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          return err(400, "error parsing JSON");
        }
        if (parsed === null) parsed = {};
        if (!isObj(parsed)) return err(400, "error parsing JSON");
        body = parsed;
      }
    }
  } else if (op === "read" || op === "delete") {
    for (const [k, v] of query) if (k !== "list" && !(k in body)) body[k] = v;
  }

  // X-Vault-Wrap-TTL
  const wrapHeader = req.headers["x-vault-wrap-ttl"];
  if (typeof wrapHeader === "string" && wrapHeader !== "") {
    let ttl: number;
    try {
      ttl = parseDurationSecond(wrapHeader);
    } catch (e) {
      return err(400, `error parsing X-Vault-Wrap-TTL header: ${(e as Error).message}`);
    }
    if (ttl < 0) return err(400, "error parsing X-Vault-Wrap-TTL header: requested wrap ttl cannot be negative");
    if (ttl > 0 && !path.startsWith("sys/wrapping/")) wrap.ttl = ttl;
  }

  // The request is built (and may fail with 400/415) before core sees it and reports the seal.
  if (s.sealed || !s.initialized) return err(503, "Vault is sealed");

  const ctx: Ctx = { path, op, query, body, headerToken, token: null };

  // Unauthenticated endpoints: a stale or bad token is ignored.
  const mount = findMount(s, path);
  if (mount?.kind === "approle" && path === `${mount.path}login`) return approleLogin(s, ctx, mount);
  if (path === "sys/wrapping/lookup") return wrappingLookup(s, ctx);
  if (path === "sys/wrapping/unwrap") return unwrap(s, ctx);

  // Authentication
  if (!headerToken) return err(403, PERMISSION_DENIED);
  if (liveWrap(s, headerToken)) return err(403, ME_PERMISSION_DENIED);
  const tok = liveToken(s, headerToken);
  if (!tok) return err(403, ME_INVALID_TOKEN);
  useToken(s, tok);
  ctx.token = tok;

  // The KV preflight does its own capability check.
  if (path === "sys/internal/ui/mounts" || path.startsWith("sys/internal/ui/mounts/")) return preflight(s, ctx);

  // Authorization
  if (!tok.isRoot) {
    let cap: Capability;
    if (op === "write") cap = exists(s, path, mount) ? "update" : "create";
    else cap = op;
    const acl = aclFor(s, tok.policies);
    // PKI issue has no existence check; either write capability is accepted for it.
    const pkiAlt = mount?.kind === "pki" && op === "write" && acl.allows(path, cap === "update" ? "create" : "update");
    if (!acl.allows(path, cap, op === "list") && !pkiAlt) return err(403, ME_PERMISSION_DENIED);
  }

  // setGeneric fixtures take precedence over any mount.
  const gen = s.generic.get(trimSlashes(path));
  if (gen && op !== "list") return genericOp(s, ctx, trimSlashes(path), gen, mount);
  if (!mount) return err(404, `no handler for route "${path}". route entry not found.`);
  const rest = path.slice(mount.path.length);
  switch (mount.kind) {
    case "kv1":
      return kv1(ctx, mount, rest);
    case "kv2":
      return kv2(s, ctx, mount, rest);
    case "approle":
      return approle(s, ctx, mount, rest);
    case "token":
      return tokenBackend(s, ctx, rest);
    case "system":
      return sys(s, ctx, rest);
    case "pki":
      return pki(s, ctx, mount, rest);
    case "database":
      return database(s, ctx, mount, rest);
    case "generic":
    case "cubbyhole":
    case "identity":
      return genericMount(s, ctx, mount, rest);
  }
}

/** Vault's existence check, deciding between create and update for POST/PUT. */
function exists(s: State, path: string, mount: Mount | undefined): boolean {
  const p = trimSlashes(path);
  if (s.generic.has(p)) return true;
  if (!mount) return false;
  const rest = path.slice(mount.path.length);
  if (mount.kind === "kv1") return mount.kv1.has(trimSlashes(rest));
  if (mount.kind === "kv2") {
    const m = /^(data|metadata)\/(.+)$/.exec(rest);
    if (m) return mount.kv2.has(trimSlashes(m[2] as string));
    return true;
  }
  if (mount.kind === "approle") {
    const m = /^role\/([^/]+)\/?$/.exec(rest);
    if (m) return mount.roles.has(m[1] as string);
  }
  return true;
}
