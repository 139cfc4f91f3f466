/**
 * The only module that talks to Vault. It wraps node-vault (axios underneath) and:
 * - never lets node-vault read process.env (VAULT_SKIP_VERIFY, VAULT_TOKEN, VAULT_PREFIX) on its own;
 * - replaces node-vault's `debug`, which prints request bodies (secret_id!);
 * - turns every failure into a one-line VrError naming the Vault path and what happened, never
 *   the raw axios error (which carries headers with the token and bodies with the secret_id);
 * - retries where retrying is right (connection errors, 412, 429, 5xx except 501), with backoff
 *   and Retry-After, and never on 4xx policy answers; a request with a side effect (a login, a
 *   certificate, leased credentials, a secret_id) only when it cannot have reached Vault;
 * - reports a 3xx (a standby redirecting to the active node) as "Vault unavailable", never follows it.
 */
import { readFileSync } from "node:fs";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { createRequire } from "node:module";
import nodeVault from "node-vault";
import { ExitCode, VrError } from "../errors.js";
import type { VaultConnection } from "../layout/load.js";
import { cutText } from "../redact.js";

const require = createRequire(import.meta.url);

/** Symbol under which the response's Retry-After (seconds) and content type ride on the parsed body. */
const META = Symbol.for("vault-render.response-meta");
interface ResponseMeta {
  retryAfter?: number;
  contentType?: string;
  /** The Location header of a 3xx. */
  location?: string;
}

let axiosPatched = false;
/**
 * node-vault drops response headers. Its axios instance is created from the CommonJS axios
 * defaults, so a response transform added there (before node-vault builds its instance) lets us
 * carry Retry-After and the content type along with the body, without touching node-vault.
 */
function patchAxiosDefaults(): void {
  if (axiosPatched) return;
  axiosPatched = true;
  const axios = require("axios") as { defaults: { transformResponse: unknown; maxRedirects?: number } };
  // Never follow redirects: axios would replay the request, X-Vault-Token header and secret_id
  // body included, to whatever the Location names (follow-redirects strips only Authorization and
  // Cookie). A 3xx is reported as "Vault unavailable" (a standby's redirect), naming only the host.
  axios.defaults.maxRedirects = 0;
  const existing = axios.defaults.transformResponse;
  const list = Array.isArray(existing) ? existing : existing ? [existing] : [];
  axios.defaults.transformResponse = [
    ...list,
    function captureMeta(data: unknown, headers: { get?: (n: string) => unknown } | undefined, status?: number) {
      const ra = headers?.get?.("retry-after");
      const ct = headers?.get?.("content-type");
      const loc = headers?.get?.("location");
      const meta: ResponseMeta = {};
      if (typeof ra === "string" && /^\d+$/.test(ra.trim())) meta.retryAfter = Number(ra.trim());
      if (typeof ct === "string") meta.contentType = ct;
      if (typeof loc === "string") meta.location = loc;
      if (typeof status === "number" && status >= 300 && status < 400) {
        // A redirect (a standby pointing at the active node): its body is empty or irrelevant, and
        // sys/health resolves with the body whatever the status, so mark it for request() to see.
        const marked = { __redirect: status };
        Object.defineProperty(marked, META, { value: meta, enumerable: false });
        return marked;
      }
      if (data !== null && typeof data === "object") {
        Object.defineProperty(data, META, { value: meta, enumerable: false });
        return data;
      }
      if (typeof data === "string" && data.length > 0) {
        // Not JSON (an HTML page from a proxy, or truncated JSON): keep only its shape, never its text.
        const wrapped = { __unparsed: true, length: data.length, html: /^\s*</.test(data) };
        Object.defineProperty(wrapped, META, { value: meta, enumerable: false });
        return wrapped;
      }
      return data;
    },
  ];
}

export interface VaultResponse {
  request_id?: string;
  lease_id?: string;
  renewable?: boolean;
  lease_duration?: number;
  data?: Record<string, unknown> | null;
  wrap_info?: Record<string, unknown> | null;
  warnings?: string[] | null;
  auth?: {
    client_token: string;
    accessor: string;
    policies: string[];
    lease_duration: number;
    renewable: boolean;
    token_type?: string;
  } | null;
}

export interface RequestOptions {
  /** Use this token for the call instead of the client's (e.g. a wrapping token). */
  token?: string;
  /** Do not retry at all. */
  noRetry?: boolean;
  /**
   * The request has a side effect a replay would repeat (an AppRole login burns a secret_id use,
   * `pki/issue` issues a certificate, a leased credential read creates credentials, secret-id
   * creation, an unwrap): retried only when it cannot have reached Vault (connection refused, DNS,
   * TLS handshake). A timeout, a dropped connection, a 5xx or a 429 fail it: the next run decides.
   */
  sideEffect?: boolean;
  /** Query parameters. */
  query?: Record<string, string>;
  headers?: Record<string, string>;
}

export interface ClientDeps {
  sleep: (ms: number) => Promise<void>;
  random: () => number;
  /** Called for each retry, for logging. */
  onRetry?: (info: { path: string; attempt: number; waitMs: number; reason: string }) => void;
  /** The run's redactor: Vault's error text is redacted before it is cut to length. */
  redact?: (text: string) => string;
}

type Kind =
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
  constructor(kind: Kind, vaultPath: string, status: number | undefined, message: string, body: unknown, hint?: string, notSent = false) {
    const code = {
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
    } as const;
    const unavailable = ["unreachable", "timeout", "tls", "sealed", "standby", "rate-limited", "server", "bad-response", "redirect"].includes(kind);
    super(code[kind], message, { hint, exit: unavailable ? ExitCode.Unavailable : ExitCode.Failed });
    this.kind = kind;
    this.status = status;
    this.vaultPath = vaultPath;
    this.body = body;
    this.notSent = notSent;
  }
  /** Vault (or the way to it) is not in a state to answer: nothing about this path's policy is known. */
  get unavailable(): boolean {
    return this.exit === ExitCode.Unavailable;
  }
  get retryable(): boolean {
    return ["unreachable", "timeout", "rate-limited", "server", "standby", "bad-response"].includes(this.kind) && this.status !== 501;
  }
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
function redirectHost(body: unknown): string | undefined {
  const loc = (body as Record<symbol, ResponseMeta> | undefined)?.[META]?.location;
  if (!loc) return undefined;
  try {
    return new URL(loc).host || undefined;
  } catch {
    return undefined;
  }
}

function redirectError(where: string, vaultPath: string, status: number, body: unknown): VaultRequestError {
  const host = redirectHost(body);
  return new VaultRequestError(
    "redirect",
    vaultPath,
    status,
    `${where}: Vault unavailable: HTTP ${status} redirect ${host ? `to ${host}` : "without a usable Location"} (a standby pointing at the active node), not followed`,
    body,
    host ? `set the Vault address to the active node (${host}) or to an address that always reaches it` : "set the Vault address to the active node",
  );
}

/** Errors of the connection phase: the request was never written to a socket. */
function connectPhase(err: { message?: unknown; cause?: { syscall?: unknown; message?: unknown } } | null, code: string | undefined): boolean {
  const syscall = err?.cause?.syscall;
  if (syscall === "connect" || syscall === "getaddrinfo") return true;
  if (code && TLS_CODES.has(code)) return true;
  const text = `${typeof err?.message === "string" ? err.message : ""} ${typeof err?.cause?.message === "string" ? err.cause.message : ""}`;
  return /before secure TLS connection was established/.test(text);
}

export function classify(e: unknown, op: string, vaultPath: string, address: string, redact: (text: string) => string = (t) => t): VaultRequestError {
  const where = `${op} ${vaultPath}`;
  const resp = (e as { response?: { statusCode?: unknown; body?: unknown } } | null)?.response;
  if (resp && typeof resp.statusCode === "number") {
    const status = resp.statusCode;
    const body = resp.body;
    if (status >= 300 && status < 400) return redirectError(where, vaultPath, status, body);
    // Classified on Vault's text; shown redacted first, then cut (a cut before redaction could
    // leave a secret's prefix that the redactor no longer recognises).
    const raw = vaultMessage(body);
    const msg = raw === undefined ? undefined : cutText(redact(raw), 300);
    const unparsed = body !== null && typeof body === "object" && (body as { __unparsed?: boolean }).__unparsed;
    if (unparsed) {
      const html = (body as { html?: boolean }).html;
      return new VaultRequestError("server", vaultPath, status, `${where}: HTTP ${status} with a non-JSON ${html ? "HTML page" : "body"} (a proxy or load balancer answered, not Vault)`, undefined, "check the proxy in front of Vault");
    }
    if (status === 403) {
      if (raw && /invalid token/.test(raw)) {
        return new VaultRequestError("invalid-token", vaultPath, status, `${where}: the Vault token is invalid, expired or revoked`, body);
      }
      if (raw && /preflight capability check/.test(raw)) {
        return new VaultRequestError("permission", vaultPath, status, `${where}: permission denied: the token has no capability on any path in this mount, or the mount does not exist`, body, `grant the AppRole's policy "read" on the secret, or declare "kvVersion" in the layout`);
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
      if (raw && /(not active|no active)/i.test(raw)) return new VaultRequestError("standby", vaultPath, status, `${where}: the Vault node is a standby with no active node (${msg})`, body);
      return new VaultRequestError("server", vaultPath, status, `${where}: Vault unavailable (HTTP 503${msg ? `: ${msg}` : ""})`, body);
    }
    if (status === 429) return new VaultRequestError("rate-limited", vaultPath, status, `${where}: rate limited by Vault (HTTP 429)`, body);
    if (status === 412) return new VaultRequestError("server", vaultPath, status, `${where}: Vault node lacks the required index state (HTTP 412)`, body);
    if (status >= 500) return new VaultRequestError("server", vaultPath, status, `${where}: Vault server error (HTTP ${status}${msg ? `: ${msg}` : ""})`, body);
    return new VaultRequestError("client", vaultPath, status, `${where}: HTTP ${status}${msg ? `: ${msg}` : ""}`, body);
  }
  const err = e as { code?: unknown; message?: unknown; cause?: { code?: unknown; syscall?: unknown; message?: unknown } } | null;
  const code = typeof err?.code === "string" ? err.code : typeof err?.cause?.code === "string" ? err.cause.code : undefined;
  const notSent = connectPhase(err, code);
  if (code && TLS_CODES.has(code)) {
    return new VaultRequestError("tls", vaultPath, undefined, `${where}: TLS verification of ${address} failed (${code})`, undefined, "set VAULT_CACERT or vault.caCert to the CA that signed Vault's certificate (and vault.tlsServerName if the name differs)", true);
  }
  if (code === "ECONNABORTED" || code === "ETIMEDOUT" || code === "ERR_CANCELED") {
    return new VaultRequestError("timeout", vaultPath, undefined, `${where}: no answer from ${address} before the timeout`, undefined, "check that Vault is up; vault.timeout sets the per-request limit");
  }
  if (code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "EHOSTUNREACH" || code === "ENETUNREACH") {
    return new VaultRequestError("unreachable", vaultPath, undefined, `${where}: cannot connect to ${address} (${code})`, undefined, "is Vault running and VAULT_ADDR right?", notSent);
  }
  if (code === "ECONNRESET" || code === "EPIPE" || code === "ERR_BAD_RESPONSE" || (typeof err?.message === "string" && /socket hang up/.test(err.message))) {
    if (notSent) return new VaultRequestError("unreachable", vaultPath, undefined, `${where}: the connection to ${address} was closed during the TLS handshake (${code ?? "socket hang up"})`, undefined, undefined, true);
    return new VaultRequestError("unreachable", vaultPath, undefined, `${where}: the connection to ${address} was closed before an answer (${code ?? "socket hang up"})`, undefined);
  }
  return new VaultRequestError("unreachable", vaultPath, undefined, `${where}: request to ${address} failed (${code ?? "unknown error"})`, undefined, undefined, notSent);
}

type NodeVaultClient = Omit<ReturnType<typeof nodeVault>, "token"> & { token?: string; namespace?: string; pathPrefix?: string };

export class VaultClient {
  readonly address: string;
  private readonly nv: NodeVaultClient;
  private readonly conn: VaultConnection;
  private readonly deps: ClientDeps;
  /** Number of HTTP requests sent (including retries). */
  requestCount = 0;
  /** One keep-alive agent per run: connections are reused across the run's requests. */
  private readonly agent: HttpAgent | HttpsAgent;

  constructor(conn: VaultConnection, deps: ClientDeps) {
    patchAxiosDefaults();
    this.conn = conn;
    this.deps = deps;
    this.address = conn.address;
    const requestOptions: Record<string, unknown> = { strictSSL: !conn.skipVerify };
    if (conn.caCertFile && conn.address.startsWith("https:")) {
      try {
        requestOptions.ca = readFileSync(conn.caCertFile);
      } catch (e) {
        throw new VrError("CONFIG_ENV", `cannot read the CA certificate ${conn.caCertFile}: ${(e as NodeJS.ErrnoException).code ?? "error"}`, { exit: ExitCode.Usage });
      }
    }
    if (conn.tlsServerName) requestOptions.agentOptions = { servername: conn.tlsServerName };
    const agentOptions = { keepAlive: true, maxSockets: conn.concurrency };
    this.agent = conn.address.startsWith("https:")
      ? new HttpsAgent({ ...agentOptions, ca: requestOptions.ca as Buffer | undefined, rejectUnauthorized: !conn.skipVerify, servername: conn.tlsServerName })
      : new HttpAgent(agentOptions);
    const options = {
      endpoint: conn.address,
      apiVersion: "v1",
      noCustomHTTPVerbs: true,
      // node-vault's default debug logs request bodies; ours stays silent.
      debug: () => undefined,
      rpDefaults: { strictSSL: !conn.skipVerify, timeout: conn.timeoutMs },
      requestOptions,
    };
    // `rpDefaults` is read by node-vault 0.12 but missing from its type definitions.
    this.nv = nodeVault(options as Parameters<typeof nodeVault>[0]) as NodeVaultClient;
    // node-vault falls back to VAULT_TOKEN / VAULT_NAMESPACE / VAULT_PREFIX from process.env: pin them.
    this.nv.token = undefined;
    this.nv.namespace = conn.namespace;
    this.nv.pathPrefix = "";
  }

  /** Close the kept-alive connections (end of a run or a watch pass). */
  close(): void {
    this.agent.destroy();
  }

  setToken(token: string | undefined): void {
    this.nv.token = token;
  }

  /** One request with classification and bounded retries. */
  async request(method: "GET" | "POST" | "PUT" | "DELETE", vaultPath: string, body?: unknown, opts: RequestOptions = {}): Promise<VaultResponse> {
    const op = method === "GET" ? (opts.query?.list ? "list" : "read") : method === "DELETE" ? "delete" : "write";
    const qs = opts.query ? "?" + new URLSearchParams(opts.query).toString() : "";
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    // A per-call token goes in the header, which node-vault lets win over the client's token
    // (concurrent requests share the client, so it is never swapped).
    if (typeof opts.token === "string") headers["X-Vault-Token"] = opts.token;
    const maxAttempts = opts.noRetry ? 1 : 1 + this.conn.retries;
    for (let attempt = 1; ; attempt++) {
      this.requestCount++;
      try {
        const req: Record<string, unknown> = { path: `/${vaultPath}${qs}`, method, headers: { ...headers } };
        req[this.agent instanceof HttpsAgent ? "httpsAgent" : "httpAgent"] = this.agent;
        if (body !== undefined) req.json = body;
        const res = (await this.nv.request(req as { path: string; method: string })) as unknown;
        if (res !== "" && res !== null && typeof res === "object" && (res as { __unparsed?: boolean }).__unparsed) {
          throw new VaultRequestError("bad-response", vaultPath, 200, `${op} ${vaultPath}: Vault answered with malformed JSON`, undefined, "a proxy or a broken Vault node answered");
        }
        const redirect = res !== null && typeof res === "object" ? (res as { __redirect?: unknown }).__redirect : undefined;
        // sys/health resolves whatever its status (node-vault), a redirect included.
        if (typeof redirect === "number") throw redirectError(`${op} ${vaultPath}`, vaultPath, redirect, res);
        return (res === "" ? {} : res) as VaultResponse;
      } catch (e) {
        const err = e instanceof VaultRequestError ? e : classify(e, op, vaultPath, this.address, this.deps.redact);
        if (!err.retryable || attempt >= maxAttempts) throw err;
        if (opts.sideEffect && !err.notSent) throw err;
        const meta = (err.body as Record<symbol, ResponseMeta> | undefined)?.[META];
        let waitMs = Math.min(4000, 250 * 2 ** (attempt - 1)) * (0.75 + 0.5 * this.deps.random());
        if (meta?.retryAfter !== undefined && (err.status === 429 || err.status === 503)) waitMs = Math.min(meta.retryAfter * 1000, 10_000);
        this.deps.onRetry?.({ path: vaultPath, attempt, waitMs: Math.round(waitMs), reason: err.message });
        await this.deps.sleep(waitMs);
      }
    }
  }

  read(vaultPath: string, opts?: RequestOptions): Promise<VaultResponse> {
    return this.request("GET", vaultPath, undefined, opts);
  }

  write(vaultPath: string, body: unknown, opts?: RequestOptions): Promise<VaultResponse> {
    return this.request("POST", vaultPath, body, opts);
  }

  /** GET sys/health with codes that keep every state below 400, as the official client does. */
  async health(): Promise<Record<string, unknown>> {
    return (await this.request("GET", "sys/health", undefined, {
      query: { standbyok: "false", uninitcode: "299", sealedcode: "299", standbycode: "299", drsecondarycode: "299", performancestandbycode: "299" },
    })) as Record<string, unknown>;
  }
}
