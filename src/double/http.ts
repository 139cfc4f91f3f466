/** The transport: the HTTP(S) server, request reading, the request log, latency and response encoding. */
import http from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { faultResult, takeFault } from "./faults.js";
import { accessorOf } from "./model/tokens.js";
import type { Env } from "./model/types.js";
import { createWrap, wrapEnv } from "./model/wrapping.js";
import { err, ok } from "./result.js";
import type { Result } from "./result.js";
import { dispatch } from "./router.js";
import type { State } from "./state.js";
import type { RequestLogEntry } from "./types.js";
import { goJson, multiError, sortDeep } from "./util.js";
import type { Obj } from "./util.js";

const MAX_BODY = 32 * 1024 * 1024;

/** The server that answers for the double; `sockets` tracks connections so close() can end them. */
export function createServer(s: State, tls: { cert: string; key: string } | undefined, sockets: Set<Socket>): http.Server {
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    handleRequest(s, req, res).catch(() => {
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { "Cache-Control": "no-store", "Content-Type": "application/json" });
        res.end(`${goJson({ errors: [multiError("internal error")] })}\n`);
      }
    });
  };
  const server = tls ? https.createServer({ cert: tls.cert, key: tls.key }, handler) : http.createServer(handler);
  server.keepAliveTimeout = 5000;
  const track = (sock: Socket): void => {
    sockets.add(sock);
    sock.on("close", () => sockets.delete(sock));
  };
  server.on(tls ? "secureConnection" : "connection", track);
  if (tls) server.on("connection", track);
  return server;
}

async function readBody(req: http.IncomingMessage): Promise<{ buf: Buffer; tooLarge: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) {
      tooLarge = true;
      chunks.length = 0;
    } else if (!tooLarge) chunks.push(chunk);
  }
  return { buf: Buffer.concat(chunks), tooLarge };
}

async function handleRequest(s: State, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const method = (req.method ?? "GET").toUpperCase();
  const url = new URL(req.url ?? "/", "http://double.invalid");
  const hasV1 = url.pathname.startsWith("/v1/");
  let path = hasV1 ? url.pathname.slice(4) : url.pathname.replace(/^\/+/, "");
  try {
    path = decodeURIComponent(path);
  } catch {
    // keep the raw path
  }
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) if (!(k in query)) query[k] = v;
  const headerToken = tokenFromHeaders(req.headers);
  const entry: RequestLogEntry = {
    time: s.clock.now(),
    method,
    path,
    query,
    status: 0,
    tokenAccessor: accessorOf(s, headerToken),
    wrapped: false,
  };
  s.requests.push(entry);

  const { buf, tooLarge } = await readBody(req);

  const fault = takeFault(s, method, path);
  let extraHeaders: Record<string, string> | undefined;
  if (fault) {
    if (fault.latencyMs) {
      s.latencyWaits.push(fault.latencyMs);
      await sleep(fault.latencyMs);
    }
    if (fault.holdUntil) await fault.holdUntil.catch(() => undefined);
    if (fault.drop) {
      await globalLatency(s);
      req.socket.destroy();
      return;
    }
    if (fault.hang) return; // socket stays open until the client gives up or close()
    const canned = faultResult(fault, path, url);
    if (canned) {
      await send(s, req, res, canned, entry, fault.headers);
      return;
    }
    extraHeaders = fault.headers;
  }

  let result: Result;
  const wrap: { ttl?: number } = {};
  if (tooLarge) result = err(413, "http: request body too large");
  else result = await dispatch(s, req, method, path, url.searchParams, buf, headerToken, hasV1, wrap);

  // response wrapping
  const wrapTtl = wrap.ttl;
  if (wrapTtl && result.t === "env" && !result.raw && (result.status ?? 200) === 200) {
    const creationPath = path;
    const w = createWrap(s, result.env, wrapTtl, creationPath, result.wrappedAccessor);
    result = ok(wrapEnv(w));
    entry.wrapped = true;
  }
  if (fault?.dropAfter) {
    // Processed, but the answer never leaves: the client sees a reset after sending.
    await globalLatency(s);
    req.socket.destroy();
    return;
  }
  await send(s, req, res, result, entry, extraHeaders);
}

async function globalLatency(s: State): Promise<void> {
  if (s.latencyMs > 0) {
    s.latencyWaits.push(s.latencyMs);
    await sleep(s.latencyMs);
  }
}

async function send(
  s: State,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  result: Result,
  entry: RequestLogEntry,
  extraHeaders?: Record<string, string>,
): Promise<void> {
  await globalLatency(s);
  if (res.destroyed || res.writableEnded) return;
  let body = "";
  let contentType: string | undefined = "application/json";
  const headers: Record<string, string> = { "Cache-Control": "no-store" };
  switch (result.t) {
    case "env": {
      const json = goJson(envelopeJson(result.env));
      body = result.raw ? json : `${json}\n`;
      break;
    }
    case "err":
      body = `${goJson({ errors: result.errors })}\n`;
      break;
    case "empty":
      break;
    case "bytes":
      body = result.body;
      contentType = result.contentType ?? (result.status >= 300 && result.status < 400 ? undefined : "application/json");
      Object.assign(headers, result.headers);
      break;
  }
  if (contentType) headers["Content-Type"] = contentType;
  if (s.tls) headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains";
  if (extraHeaders) Object.assign(headers, extraHeaders);
  const status = result.t === "env" ? (result.status ?? 200) : result.status;
  const noBody = req.method === "HEAD" || status === 204 || status === 304;
  if (!noBody) headers["Content-Length"] = String(Buffer.byteLength(body));
  entry.status = status;
  try {
    res.writeHead(status, headers);
  } catch {
    entry.status = 500;
    res.writeHead(500, { "Cache-Control": "no-store", "Content-Type": "application/json" });
    res.end(`${goJson({ errors: [] })}\n`);
    return;
  }
  res.end(noBody ? undefined : body);
}

function envelopeJson(e: Env): Obj {
  return {
    request_id: e.requestId ?? randomUUID(),
    lease_id: e.leaseId ?? "",
    renewable: e.renewable ?? false,
    lease_duration: e.leaseDuration ?? 0,
    data: sortDeep(e.data ?? null),
    wrap_info: e.wrapInfo ?? null,
    warnings: e.warnings ?? null,
    auth: e.auth ?? null,
    mount_type: e.mountType,
  };
}

function tokenFromHeaders(h: http.IncomingHttpHeaders): string {
  const x = h["x-vault-token"];
  const xv = Array.isArray(x) ? x[0] : x;
  if (xv) return xv.trim();
  const auth = h["authorization"];
  if (auth && /^Bearer\s+/i.test(auth)) return auth.replace(/^Bearer\s+/i, "").trim();
  return "";
}
