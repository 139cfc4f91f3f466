/**
 * The wire to Vault: node:http / node:https with one keep-alive agent per run, and nothing else
 * (no axios, no proxy lookup, no redirect following). node-vault is given this as its
 * `request-promise` (see `nodeVaultAdapter`), so every named command it has rides on it.
 *
 * Per request it:
 * - sends JSON, `X-Vault-Request: true`, the headers node-vault set (token, namespace);
 * - bounds the whole exchange (connect, TLS, answer) by one deadline;
 * - knows the phase a failure came in: before the connection was up, the request cannot have
 *   reached Vault (`notSent`); after, it may have;
 * - keeps the response headers that matter (Retry-After, Content-Type, Location) and never
 *   follows a redirect (a replay would carry the token and the secret_id to whatever the Location names);
 * - never logs, and never puts a body into an error;
 * - classifies each answer or failure (./classify.ts), and holds the retry rules (`withRetries`):
 *   what retrying can fix (connection errors, 412, 429, 5xx except 501, malformed answers) with
 *   capped exponential backoff or Retry-After, never a 4xx policy answer, and a request with a
 *   side effect only when it cannot have reached Vault.
 *
 * The I/O deadline is a real timer: it measures the network, not the run's clock.
 */
import http from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import { classifyNetwork, classifyResponse, VaultRequestError } from "./classify.js";
import type { RequestName, WireResponse } from "./classify.js";

/** A Vault answer larger than this is not a Vault answer. */
const MAX_BODY_BYTES = 32 * 1024 * 1024;

export interface TransportOptions {
  /** Only for messages ("cannot connect to <address>"). */
  address: string;
  /** Extra CA certificates (PEM) for https. */
  ca?: Buffer;
  servername?: string;
  rejectUnauthorized: boolean;
  timeoutMs: number;
  retries: number;
  /** Sockets per origin, at most. */
  concurrency: number;
  sleep: (ms: number) => Promise<void>;
  random: () => number;
  onRetry?: (info: { path: string; attempt: number; waitMs: number; reason: string }) => void;
  /** The run's redactor, applied to Vault's error text before it is cut. */
  redact?: (text: string) => string;
}

export interface WireRequest {
  method: string;
  /** Absolute URL: origin, `/v1/…` path and query. */
  url: URL;
  headers: Record<string, string>;
  /** Sent as JSON when defined. */
  body?: unknown;
}

/** The request options node-vault hands to its `request-promise` function. */
export interface NodeVaultRequest {
  method: string;
  uri: string;
  headers?: Record<string, string>;
  json?: unknown;
}

export interface NodeVaultResponse {
  statusCode: number;
  body: unknown;
  request: { path: string };
}

/** An exchange that ended without an answer. */
class NoAnswer extends Error {
  readonly failure: unknown;
  readonly notSent: boolean;
  constructor(failure: unknown, notSent: boolean) {
    super("no answer");
    this.failure = failure;
    this.notSent = notSent;
  }
}

function codedError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** `read secret/data/app` from `GET /v1/secret/data/app?version=2` (plain string work: this runs per request). */
export function requestName(method: string, pathname: string, search: string): RequestName {
  const at = pathname.indexOf("/v1/");
  const raw = at >= 0 ? pathname.slice(at + 4) : pathname.replace(/^\//, "");
  let vaultPath = raw;
  if (raw.includes("%")) {
    try {
      vaultPath = decodeURIComponent(raw);
    } catch {
      // A "%" that is no escape ("apps/100%"): the path as written.
    }
  }
  const m = method.toUpperCase();
  const op = m === "GET" ? (/[?&]list=[^&]/.test(search) ? "list" : "read") : m === "LIST" ? "list" : m === "DELETE" ? "delete" : "write";
  return { op, vaultPath };
}

function retryAfterSeconds(v: string | string[] | undefined): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  return typeof s === "string" && /^\d+$/.test(s.trim()) ? Number(s.trim()) : undefined;
}

export class Transport {
  /** HTTP requests sent, retries included. */
  requestCount = 0;
  private readonly opts: TransportOptions;
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;

  constructor(opts: TransportOptions) {
    this.opts = opts;
    const pool = { keepAlive: true, maxSockets: Math.max(1, opts.concurrency) };
    this.httpAgent = new http.Agent(pool);
    this.httpsAgent = new https.Agent({ ...pool, ca: opts.ca, servername: opts.servername, rejectUnauthorized: opts.rejectUnauthorized, minVersion: "TLSv1.2" });
  }

  /** Close the kept-alive connections (end of a run or of a watch pass). */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  /** One exchange: resolves with any HTTP answer, rejects with `NoAnswer` when there was none. */
  exchange(req: WireRequest): Promise<WireResponse> {
    const url = req.url;
    const tls = url.protocol === "https:";
    const payload = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body), "utf8");
    const headers: Record<string, string> = { "X-Vault-Request": "true", ...req.headers };
    if (payload) {
      headers["Content-Type"] = "application/json";
      headers["Content-Length"] = String(payload.length);
    }
    return new Promise<WireResponse>((resolve, reject) => {
      let connected = false;
      let done = false;
      const finish = (fn: () => void): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        fn();
      };
      const fail = (e: unknown): void => finish(() => reject(new NoAnswer(e, !connected)));
      const options: http.RequestOptions = {
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[(.*)\]$/, "$1"),
        port: url.port || (tls ? 443 : 80),
        path: url.pathname + url.search,
        method: req.method,
        headers,
        agent: tls ? this.httpsAgent : this.httpAgent,
      };
      const r = (tls ? https : http).request(options, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY_BYTES) {
            r.destroy(codedError("ERR_BAD_RESPONSE", "answer too large"));
            return;
          }
          chunks.push(c);
        });
        res.on("error", fail);
        res.on("aborted", () => fail(codedError("ECONNRESET", "aborted")));
        res.on("end", () => {
          if (res.readableAborted || !res.complete) return fail(codedError("ECONNRESET", "answer cut short"));
          const text = Buffer.concat(chunks).toString("utf8");
          const contentType = typeof res.headers["content-type"] === "string" ? res.headers["content-type"] : undefined;
          const out: WireResponse = {
            status: res.statusCode ?? 0,
            body: undefined,
            contentType,
            retryAfter: retryAfterSeconds(res.headers["retry-after"]),
            location: typeof res.headers.location === "string" ? res.headers.location : undefined,
          };
          if (text.trim() !== "") {
            try {
              out.body = JSON.parse(text) as unknown;
            } catch {
              // Not JSON (a proxy's page, a truncated answer): only its shape is kept, never its text.
              out.unparsed = { length: text.length, html: /^\s*</.test(text) || /html/i.test(contentType ?? "") };
            }
          }
          finish(() => resolve(out));
        });
      });
      r.on("socket", (s: Socket) => {
        // A kept-alive socket is already up: anything written to it may reach Vault.
        if (!s.connecting) connected = true;
        else s.once(tls ? "secureConnect" : "connect", () => (connected = true));
      });
      r.on("error", fail);
      const timer = setTimeout(() => r.destroy(codedError("ETIMEDOUT", "timeout")), this.opts.timeoutMs);
      r.end(payload);
    });
  }

  /**
   * One request, classified: resolves with a 2xx answer (node-vault decides what a 2xx other than
   * 200/204 means), rejects with a `VaultRequestError` otherwise.
   */
  async send(req: WireRequest): Promise<WireResponse> {
    const name = requestName(req.method, req.url.pathname, req.url.search);
    this.requestCount++;
    try {
      const res = await this.exchange(req);
      if (res.status >= 200 && res.status < 300 && !res.unparsed) return res;
      throw classifyResponse(res, name, this.opts.redact);
    } catch (e) {
      if (!(e instanceof NoAnswer)) throw e;
      throw classifyNetwork(e.failure, name, this.opts.address, e.notSent);
    }
  }

  /**
   * The retry rules around one attempt (which sends one request through `send`, re-reading the
   * token each time: a login during a backoff is seen by the retry). Retries what retrying can fix,
   * never a policy answer, and a request with a side effect only when it cannot have reached Vault.
   */
  async withRetries<T>(attemptOnce: () => Promise<T>, req: { sideEffect?: boolean; noRetry?: boolean }): Promise<T> {
    const maxAttempts = req.noRetry ? 1 : 1 + this.opts.retries;
    for (let attempt = 1; ; attempt++) {
      try {
        return await attemptOnce();
      } catch (err) {
        if (!(err instanceof VaultRequestError) || !err.retryable || attempt >= maxAttempts) throw err;
        if (req.sideEffect && !err.notSent) throw err;
        let waitMs = Math.min(4000, 250 * 2 ** (attempt - 1)) * (0.75 + 0.5 * this.opts.random());
        if (err.retryAfter !== undefined && (err.status === 429 || err.status === 503)) waitMs = Math.min(err.retryAfter * 1000, 10_000);
        this.opts.onRetry?.({ path: err.vaultPath, attempt, waitMs: Math.round(waitMs), reason: err.message });
        await this.opts.sleep(waitMs);
      }
    }
  }

  /**
   * node-vault's `request-promise` option: `defaults()` returns the function every node-vault
   * command calls. Its defaults (json, strictSSL, timeout) are ours already and are ignored.
   */
  nodeVaultAdapter(): { defaults: (d: unknown) => (o: NodeVaultRequest) => Promise<NodeVaultResponse> } {
    const call = async (o: NodeVaultRequest): Promise<NodeVaultResponse> => {
      const body = o.json !== null && typeof o.json === "object" ? o.json : undefined;
      const url = new URL(o.uri);
      const res = await this.send({ method: o.method, url, headers: o.headers ?? {}, body });
      return { statusCode: res.status, body: res.body ?? "", request: { path: url.pathname } };
    };
    return { defaults: () => call };
  }
}
