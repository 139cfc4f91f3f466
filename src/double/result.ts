/** A handler's answer (before it is encoded) and the request context handlers see. */
import { multiError } from "./util.js";
import type { Obj } from "./util.js";
import type { Env, TokenEntry } from "./model/types.js";

export const PERMISSION_DENIED = "permission denied";
export const ME_PERMISSION_DENIED = multiError("permission denied");
export const ME_INVALID_TOKEN = multiError("permission denied", "invalid token");
export const ME_UNSUPPORTED_OP = multiError("unsupported operation");
export const ME_UNSUPPORTED_PATH = multiError("unsupported path");
export const INVALID_WRAPPING_TOKEN = "wrapping token is not valid or does not exist";
export const INVALID_ROLE_OR_SECRET = "invalid role or secret ID";

export type Result =
  | { t: "env"; env: Env; status?: number; raw?: boolean; wrappedAccessor?: string }
  | { t: "empty"; status: number }
  | { t: "err"; status: number; errors: string[] }
  | { t: "bytes"; status: number; body: string; contentType?: string; headers?: Record<string, string> };

export type Op = "read" | "list" | "write" | "delete" | "patch";

export interface Ctx {
  path: string;
  op: Op;
  query: URLSearchParams;
  body: Obj;
  headerToken: string;
  token: TokenEntry | null;
}

export function err(status: number, ...errors: string[]): Result {
  return { t: "err", status, errors };
}
export const NOT_FOUND: Result = { t: "err", status: 404, errors: [] };
export const NO_CONTENT: Result = { t: "empty", status: 204 };

export function ok(env: Env, extra: { wrappedAccessor?: string } = {}): Result {
  return { t: "env", env, ...extra };
}
