/** Fault injection: drop, hang, malformed, HTML, redirect or canned answers for matching requests. */
import { randomUUID } from "node:crypto";
import { ME_PERMISSION_DENIED } from "./result.js";
import type { Result } from "./result.js";
import type { State } from "./state.js";
import type { Fault } from "./types.js";
import { goJson, multiError } from "./util.js";

export function addFault(s: State, f: Fault): () => void {
  const entry = { f, remaining: f.times ?? Infinity };
  s.faults.push(entry);
  return () => {
    s.faults = s.faults.filter((x) => x !== entry);
  };
}

export function clearFaults(s: State): void {
  s.faults = [];
}

export function takeFault(s: State, method: string, path: string): Fault | undefined {
  for (const e of s.faults) {
    if (e.remaining <= 0) continue;
    if (e.f.method && e.f.method.toUpperCase() !== method) continue;
    if (e.f.path !== undefined) {
      if (typeof e.f.path === "string") {
        if (e.f.path !== path) continue;
      } else {
        e.f.path.lastIndex = 0;
        if (!e.f.path.test(path)) continue;
      }
    }
    e.remaining--;
    if (e.remaining <= 0) s.faults = s.faults.filter((x) => x !== e);
    return e.f;
  }
  return undefined;
}

export function faultResult(f: Fault, path: string, url: URL): Result | undefined {
  if (f.malformed) {
    const full = goJson({ request_id: randomUUID(), lease_id: "", renewable: false, lease_duration: 0, data: { value: "x".repeat(32) } });
    return { t: "bytes", status: 200, body: full.slice(0, Math.floor(full.length / 2)), contentType: f.contentType ?? "application/json" };
  }
  if (f.html) {
    const body =
      "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
    return { t: "bytes", status: f.status ?? 502, body: f.body ?? body, contentType: f.contentType ?? "text/html" };
  }
  if (f.redirectTo) {
    const loc = `${f.redirectTo.replace(/\/+$/, "")}${url.pathname}${url.search}`;
    return { t: "bytes", status: f.redirectStatus ?? 307, body: "", headers: { Location: loc }, contentType: f.contentType };
  }
  if (f.status !== undefined || f.body !== undefined) {
    const status = f.status ?? 200;
    return { t: "bytes", status, body: f.body ?? defaultErrorBody(status, path), contentType: f.contentType ?? "application/json" };
  }
  return undefined;
}

/** Vault's error body for a status, used by faults that give only a status. */
function defaultErrorBody(status: number, path: string): string {
  let errors: string[];
  switch (status) {
    case 403:
      errors = [ME_PERMISSION_DENIED];
      break;
    case 412:
      errors = ["required index state not present"];
      break;
    case 413:
      errors = ["http: request body too large"];
      break;
    case 429:
      errors = [`request path ${JSON.stringify(path)}: rate limit quota exceeded`];
      break;
    case 500:
      errors = [multiError("internal error")];
      break;
    case 502:
      errors = ["upstream rate limited"];
      break;
    case 503:
      errors = ["Vault is sealed"];
      break;
    default:
      errors = [];
  }
  return `${goJson({ errors })}\n`;
}
