/**
 * What a failed Vault request means, as one typed error: the kind (decides the exit code and
 * whether a retry can help), the Vault path, and a one-line message that never carries a token, a
 * body or a Location's path. The transport classifies every attempt; the client reports the last.
 */
import { ExitCode, VrError } from "../support/errors.js";
import type { ErrorCode } from "../support/errors.js";
import { cutText } from "../support/redact.js";

export type Kind =
  | "unreachable"
  | "timeout"
  | "tls"
  | "sealed"
  | "standby"
  | "rate-limited"
  | "server"
  | "bad-response"
  | "permission"
  | "invalid-token"
  | "not-found"
  | "deleted"
  | "redirect"
  | "client";

const CODES: Record<Kind, ErrorCode> = {
  unreachable: "VAULT_UNREACHABLE",
  timeout: "VAULT_UNREACHABLE",
  tls: "VAULT_TLS",
  sealed: "VAULT_SEALED",
  standby: "VAULT_STANDBY",
  "rate-limited": "VAULT_RATE_LIMITED",
  server: "VAULT_SERVER_ERROR",
  "bad-response": "VAULT_BAD_RESPONSE",
  permission: "VAULT_PERMISSION_DENIED",
  "invalid-token": "VAULT_INVALID_TOKEN",
  "not-found": "VAULT_NOT_FOUND",
  deleted: "VAULT_DELETED_VERSION",
  redirect: "VAULT_STANDBY",
  client: "VAULT_REQUEST",
};
const UNAVAILABLE = new Set<Kind>(["unreachable", "timeout", "tls", "sealed", "standby", "rate-limited", "server", "bad-response", "redirect"]);
const RETRYABLE = new Set<Kind>(["unreachable", "timeout", "rate-limited", "server", "standby", "bad-response"]);

export class VaultRequestError extends VrError {
  readonly kind: Kind;
  readonly status: number | undefined;
  readonly vaultPath: string;
  readonly body: unknown;
  /**
   * The request cannot have reached Vault (no connection: refused, DNS, TLS handshake): retrying
   * it cannot repeat a side effect. False whenever it may have been sent.
   */
  readonly notSent: boolean;
  /** Seconds from a Retry-After header of a 429 or 503, when it had a plain number. */
  readonly retryAfter: number | undefined;
  constructor(
    kind: Kind,
    vaultPath: string,
    status: number | undefined,
    message: string,
    body: unknown,
    hint?: string,
    notSent = false,
    retryAfter?: number,
  ) {
    super(CODES[kind], message, { hint, exit: UNAVAILABLE.has(kind) ? ExitCode.Unavailable : ExitCode.Failed });
    this.kind = kind;
    this.status = status;
    this.vaultPath = vaultPath;
    this.body = body;
    this.notSent = notSent;
    this.retryAfter = retryAfter;
  }
  /** Vault (or the way to it) is not in a state to answer: nothing about this path's policy is known. */
  get unavailable(): boolean {
    return this.exit === ExitCode.Unavailable;
  }
  get retryable(): boolean {
    return RETRYABLE.has(this.kind) && this.status !== 501;
  }
}

/** A response as the transport read it: status, the headers that matter, and the parsed body. */
export interface WireResponse {
  status: number;
  /** The parsed JSON body; undefined when the body was empty or not JSON. */
  body: unknown;
  /** The body was present but not JSON (a proxy's page, a truncated answer). */
  unparsed?: { length: number; html: boolean };
  contentType: string | undefined;
  retryAfter: number | undefined;
  location: string | undefined;
}

/** What the request was, for messages: `read secret/data/app`. */
export interface RequestName {
  op: "read" | "list" | "write" | "delete";
  vaultPath: string;
}

/** The first error string of a Vault error body, flattened from Go's multierror rendering. */
function vaultMessage(body: unknown): string | undefined {
  if (body && typeof body === "object" && Array.isArray((body as { errors?: unknown }).errors)) {
    const errs = (body as { errors: unknown[] }).errors.filter((e): e is string => typeof e === "string");
    if (errs.length === 0) return undefined;
    const lines = errs
      .join("\n")
      .split("\n")
      .map((l) => l.replace(/^\s*\*\s*/, "").trim())
      .filter((l) => l && !/^\d+ errors? occurred:$/.test(l));
    return lines.join("; ");
  }
  return undefined;
}

/** Where a redirect points, as "host:port" only (a Location's path or query is never printed). */
function redirectHost(location: string | undefined): string | undefined {
  if (!location) return undefined;
  try {
    return new URL(location).host || undefined;
  } catch {
    return undefined;
  }
}

/** A 2xx..5xx answer that is not a success, as a typed error. */
export function classifyResponse(res: WireResponse, name: RequestName, redact: (text: string) => string = (t) => t): VaultRequestError {
  const { op, vaultPath } = name;
  const where = `${op} ${vaultPath}`;
  const { status, body } = res;
  if (status >= 300 && status < 400) {
    const host = redirectHost(res.location);
    return new VaultRequestError(
      "redirect",
      vaultPath,
      status,
      `${where}: Vault unavailable: HTTP ${status} redirect ${host ? `to ${host}` : "without a usable Location"} (a standby pointing at the active node), not followed`,
      undefined,
      host ? `set the Vault address to the active node (${host}) or to an address that always reaches it` : "set the Vault address to the active node",
    );
  }
  if (res.unparsed) {
    if (status >= 200 && status < 300) {
      return new VaultRequestError("bad-response", vaultPath, status, `${where}: Vault answered with malformed JSON`, undefined, "a proxy or a broken Vault node answered");
    }
    return new VaultRequestError(
      "server",
      vaultPath,
      status,
      `${where}: HTTP ${status} with a non-JSON ${res.unparsed.html ? "HTML page" : "body"} (a proxy or load balancer answered, not Vault)`,
      undefined,
      "check the proxy in front of Vault",
      false,
      res.retryAfter,
    );
  }
  // Classified on Vault's text; shown redacted first, then cut (a cut before redaction could
  // leave a secret's prefix that the redactor no longer recognises).
  const raw = vaultMessage(body);
  const msg = raw === undefined ? undefined : cutText(redact(raw), 300);
  if (status === 403) {
    if (raw && /invalid token/.test(raw)) {
      return new VaultRequestError("invalid-token", vaultPath, status, `${where}: the Vault token is invalid, expired or revoked`, body);
    }
    if (raw && /preflight capability check/.test(raw)) {
      return new VaultRequestError(
        "permission",
        vaultPath,
        status,
        `${where}: permission denied: the token has no capability on any path in this mount, or the mount does not exist`,
        body,
        `grant the AppRole's policy "read" on the secret, or declare "kvVersion" in the layout`,
      );
    }
    const cap = op === "read" ? "read" : op === "list" ? "list" : op === "delete" ? "delete" : "create/update";
    return new VaultRequestError("permission", vaultPath, status, `${where}: permission denied (the policy needs "${cap}" on "${vaultPath}")`, body, "this is a policy error, not retried: fix the AppRole's policy");
  }
  if (status === 404) {
    const data = (body as { data?: { data?: unknown; metadata?: { deletion_time?: string; destroyed?: boolean; version?: number } } } | null)?.data;
    if (data && data.data === null && data.metadata) {
      const m = data.metadata;
      const what = m.destroyed ? "destroyed" : "deleted";
      return new VaultRequestError("deleted", vaultPath, status, `${where}: version ${m.version ?? "?"} is ${what}`, body, m.destroyed ? "write a new version or pin an older one" : "undelete it or write a new version");
    }
    const route = raw && /no handler for route/.test(raw);
    return new VaultRequestError("not-found", vaultPath, status, route ? `${where}: no secrets engine is mounted at this path` : `${where}: no secret at this path (404)`, body);
  }
  if (status === 503) {
    if (raw && /sealed/i.test(raw)) return new VaultRequestError("sealed", vaultPath, status, `${where}: Vault is sealed`, body, "unseal Vault; the last good files were kept");
    if (raw && /(not active|no active)/i.test(raw)) {
      return new VaultRequestError("standby", vaultPath, status, `${where}: the Vault node is a standby with no active node (${msg})`, body, undefined, false, res.retryAfter);
    }
    return new VaultRequestError("server", vaultPath, status, `${where}: Vault unavailable (HTTP 503${msg ? `: ${msg}` : ""})`, body, undefined, false, res.retryAfter);
  }
  if (status === 429) return new VaultRequestError("rate-limited", vaultPath, status, `${where}: rate limited by Vault (HTTP 429)`, body, undefined, false, res.retryAfter);
  if (status === 412) return new VaultRequestError("server", vaultPath, status, `${where}: Vault node lacks the required index state (HTTP 412)`, body);
  if (status >= 500) return new VaultRequestError("server", vaultPath, status, `${where}: Vault server error (HTTP ${status}${msg ? `: ${msg}` : ""})`, body);
  return new VaultRequestError("client", vaultPath, status, `${where}: HTTP ${status}${msg ? `: ${msg}` : ""}`, body);
}

const TLS_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "CERT_NOT_YET_VALID",
  "CERT_SIGNATURE_FAILURE",
  "EPROTO",
  "ERR_SSL_WRONG_VERSION_NUMBER",
]);

/**
 * A request that got no answer, as a typed error. `notSent` is the transport's knowledge of the
 * phase: true when the failure came before a connection was established (the request cannot
 * have reached Vault), false once request bytes may have been written.
 */
export function classifyNetwork(e: unknown, name: RequestName, address: string, notSent: boolean): VaultRequestError {
  const { vaultPath } = name;
  const where = `${name.op} ${vaultPath}`;
  const err = e as { code?: unknown; message?: unknown } | null;
  const code = typeof err?.code === "string" ? err.code : undefined;
  const message = typeof err?.message === "string" ? err.message : "";
  if (address.startsWith("https://") && (code === "ERR_SSL_WRONG_VERSION_NUMBER" || (code === "EPROTO" && /wrong version number|packet length too long|http request/i.test(message)))) {
    // An https:// address answered in plain text: OpenSSL reads "HTTP/1.1 400" as a TLS record.
    const host = address.replace(/^https:\/\//, "");
    return new VaultRequestError(
      "tls",
      vaultPath,
      undefined,
      `${where}: the server at ${host} speaks plain HTTP, not TLS (${code})`,
      undefined,
      `use http://${host} as the address (VAULT_ADDR or vault.address), or enable TLS on its listener`,
      notSent,
    );
  }
  if (code && TLS_CODES.has(code)) {
    return new VaultRequestError(
      "tls",
      vaultPath,
      undefined,
      `${where}: TLS verification of ${address} failed (${code})`,
      undefined,
      "set VAULT_CACERT or vault.caCert to the CA that signed Vault's certificate (and vault.tlsServerName if the name differs)",
      notSent,
    );
  }
  if (code === "ETIMEDOUT") {
    return new VaultRequestError("timeout", vaultPath, undefined, `${where}: no answer from ${address} before the timeout`, undefined, "check that Vault is up; vault.timeout sets the per-request limit", notSent);
  }
  if (code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "EHOSTUNREACH" || code === "ENETUNREACH") {
    return new VaultRequestError("unreachable", vaultPath, undefined, `${where}: cannot connect to ${address} (${code})`, undefined, "is Vault running and VAULT_ADDR right?", notSent);
  }
  if (code === "ECONNRESET" || code === "EPIPE" || code === "HPE_INVALID_CONSTANT" || code === "ERR_BAD_RESPONSE" || (typeof err?.message === "string" && /socket hang up/.test(err.message))) {
    if (notSent) {
      return new VaultRequestError("unreachable", vaultPath, undefined, `${where}: the connection to ${address} was closed during the TLS handshake (${code ?? "socket hang up"})`, undefined, undefined, true);
    }
    return new VaultRequestError("unreachable", vaultPath, undefined, `${where}: the connection to ${address} was closed before an answer (${code ?? "socket hang up"})`, undefined);
  }
  return new VaultRequestError("unreachable", vaultPath, undefined, `${where}: request to ${address} failed (${code ?? "unknown error"})`, undefined, undefined, notSent);
}
