/**
 * The transport on its own, against small loopback servers that misbehave on purpose: headers,
 * redirects, TLS, timeouts, dropped connections, keep-alive and the retry rules.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { createServer } from "node:net";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { scaled } from "../../../test/support/scale.js";
import { failure } from "./test-support.js";
import { requestName, Transport } from "./transport.js";
import type { TransportOptions } from "./transport.js";


interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}
type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string, n: number) => void;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A loopback server; `handle` decides each answer. Counts requests and connections. */
async function serve(handle: Handler, tls?: { cert: string; key: string }) {
  const seen: Seen[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      handle(req, res, body, seen.length);
    });
  };
  const server = tls ? https.createServer(tls, onRequest) : http.createServer(onRequest);
  server.on(tls ? "secureConnection" : "connection", () => connections++);
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  return { url: `${tls ? "https" : "http"}://127.0.0.1:${port}`, seen, connections: () => connections };
}

function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

function transport(over: Partial<TransportOptions> = {}) {
  const waits: number[] = [];
  const t = new Transport({
    address: "the test server",
    rejectUnauthorized: true,
    timeoutMs: scaled(2000),
    retries: 2,
    concurrency: 4,
    sleep: (ms) => {
      waits.push(ms);
      return Promise.resolve();
    },
    random: () => 0.5,
    ...over,
  });
  cleanups.push(() => t.close());
  return { t, waits };
}


/** `send` under the retry rules, as the client calls it. */
function call(t: Transport, url: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}, rules: { sideEffect?: boolean; noRetry?: boolean } = {}) {
  return t.withRetries(() => t.send({ method: init.method ?? "GET", url: new URL(url), headers: init.headers ?? {}, body: init.body }), rules);
}

describe("headers and bodies", () => {
  it("sends JSON with X-Vault-Request and the caller's headers; parses the answer and keeps its content type", async () => {
    const s = await serve((_q, res) => json(res, 200, { data: { ok: true } }));
    const { t } = transport();
    const res = await t.send({ method: "POST", url: new URL(`${s.url}/v1/auth/approle/login`), headers: { "X-Vault-Token": "tok", "X-Vault-Namespace": "team" }, body: { role_id: "r", secret_id: "s" } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ data: { ok: true } });
    expect(res.contentType).toBe("application/json");
    const got = s.seen[0];
    expect(got?.method).toBe("POST");
    expect(got?.url).toBe("/v1/auth/approle/login");
    expect(JSON.parse(got?.body ?? "")).toEqual({ role_id: "r", secret_id: "s" });
    expect(got?.headers["content-type"]).toBe("application/json");
    expect(got?.headers["content-length"]).toBe(String(Buffer.byteLength(got?.body ?? "")));
    expect(got?.headers["x-vault-request"]).toBe("true");
    expect(got?.headers["x-vault-token"]).toBe("tok");
    expect(got?.headers["x-vault-namespace"]).toBe("team");
  });

  it("sends no body and no content type on a GET, and takes a 204 as an empty answer", async () => {
    const s = await serve((_q, res) => {
      res.writeHead(204);
      res.end();
    });
    const { t } = transport();
    const res = await t.send({ method: "GET", url: new URL(`${s.url}/v1/sys/leases/renew?x=1`), headers: {} });
    expect(res.status).toBe(204);
    expect(res.body).toBeUndefined();
    expect(s.seen[0]?.headers["content-type"]).toBeUndefined();
    expect(s.seen[0]?.url).toBe("/v1/sys/leases/renew?x=1");
  });

  it("honours Retry-After on a 429 and a 503 (capped at 10 s), and backs off exponentially otherwise", async () => {
    const s = await serve((_q, res, _b, n) => {
      if (n === 1) return json(res, 429, { errors: ["rate limited"] }, { "Retry-After": "7" });
      if (n === 2) return json(res, 503, { errors: ["busy"] }, { "Retry-After": "120" });
      return json(res, 200, { data: {} });
    });
    const { t, waits } = transport({ retries: 3 });
    await call(t, `${s.url}/v1/secret/data/app`);
    expect(waits).toEqual([7000, 10_000]);
    const s2 = await serve((_q, res, _b, n) => (n < 3 ? json(res, 500, { errors: ["x"] }) : json(res, 200, {})));
    const { t: t2, waits: w2 } = transport({ retries: 3 });
    await call(t2, `${s2.url}/v1/secret/data/app`);
    expect(w2).toEqual([250, 500]);
  });

  it("a non-JSON answer keeps only its shape: an HTML error page, a malformed 200", async () => {
    const secretish = "hvs.NOT-FOR-LOGS";
    const s = await serve((_q, res, _b, n) => {
      res.writeHead(n === 1 ? 502 : 200, { "Content-Type": n === 1 ? "text/html" : "application/json" });
      res.end(n === 1 ? `<html>${secretish}</html>` : `{"data": {"password": "${secretish}"`);
    });
    const { t } = transport();
    const html = await failure(call(t, `${s.url}/v1/secret/data/app`, {}, { noRetry: true }));
    expect(html.message).toBe("read secret/data/app: HTTP 502 with a non-JSON HTML page (a proxy or load balancer answered, not Vault)");
    expect(html.retryable).toBe(true);
    const cut = await failure(call(t, `${s.url}/v1/secret/data/app`, {}, { noRetry: true }));
    expect(cut.kind).toBe("bad-response");
    for (const e of [html, cut]) expect(JSON.stringify({ m: e.message, h: e.hint, b: e.body })).not.toContain("NOT-FOR-LOGS");
  });

  it("names the request from the URL: op, path without /v1/ or query", async () => {
    const s = await serve((_q, res) => json(res, 403, { errors: ["1 error occurred:\n\t* permission denied\n\n"] }));
    const { t } = transport();
    const e = await failure(call(t, `${s.url}/v1/secret/data/app%20x?version=3`));
    expect(e.message).toBe('read secret/data/app x: permission denied (the policy needs "read" on "secret/data/app x")');
    expect(e.retryable).toBe(false);
    expect(s.seen).toHaveLength(1);
  });
});

describe("redirects", () => {
  it("are never followed: the Location's server sees nothing, the error names only its host", async () => {
    const target = await serve((_q, res) => json(res, 200, {}));
    const s = await serve((_q, res) => {
      res.writeHead(307, { Location: `${target.url.replace("127.0.0.1", "localhost")}/v1/auth/approle/login?token=hvs.x` });
      res.end();
    });
    const { t } = transport();
    const e = await failure(call(t, `${s.url}/v1/auth/approle/login`, { method: "POST", body: { role_id: "r", secret_id: "s" } }, { sideEffect: true }));
    expect(e.kind).toBe("redirect");
    expect(e.code).toBe("VAULT_STANDBY");
    expect(e.message).toContain(`redirect to localhost:${new URL(target.url).port} (a standby`);
    expect(e.message).not.toMatch(/hvs\.|token=|\/v1\//);
    expect(target.seen).toHaveLength(0);
    expect(s.seen).toHaveLength(1);
  });
});

describe("TLS", () => {
  let dir = "";
  let tlsFiles: { cert: string; key: string; ca: Buffer; otherCa: Buffer };
  const openssl = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
  const makeCa = (name: string) =>
    openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "2", "-subj", `/CN=${name}`, "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), "vr-transport-tls-"));
    makeCa("ca");
    makeCa("other");
    openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=vault.internal"]);
    writeFileSync(path.join(dir, "ext.cnf"), "subjectAltName=DNS:vault.internal\nextendedKeyUsage=serverAuth\n");
    openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf"]);
    const r = (f: string) => readFileSync(path.join(dir, f));
    tlsFiles = { cert: r("server.pem").toString(), key: r("server.key").toString(), ca: r("ca.pem"), otherCa: r("other.pem") };
  }, scaled(30_000));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("verifies against the given CA and server name; refuses another CA or name before sending anything", async () => {
    const s = await serve((_q, res) => json(res, 200, { ok: 1 }), tlsFiles);
    const good = transport({ ca: tlsFiles.ca, servername: "vault.internal" }).t;
    expect((await good.send({ method: "GET", url: new URL(`${s.url}/v1/sys/health`), headers: {} })).body).toEqual({ ok: 1 });

    const wrongCa = await failure(transport({ ca: tlsFiles.otherCa, servername: "vault.internal" }).t.send({ method: "POST", url: new URL(`${s.url}/v1/auth/approle/login`), headers: {}, body: { secret_id: "s" } }));
    expect(wrongCa.kind).toBe("tls");
    expect(wrongCa.notSent).toBe(true);
    const wrongName = await failure(transport({ ca: tlsFiles.ca }).t.send({ method: "GET", url: new URL(`${s.url}/v1/sys/health`), headers: {} }));
    expect(wrongName.kind).toBe("tls");
    expect(wrongName.message).toContain("ERR_TLS_CERT_ALTNAME_INVALID");
    expect(wrongName.notSent).toBe(true);
    // Only the verified transport's request reached the server.
    expect(s.seen).toHaveLength(1);
    // skipVerify: no verification at all.
    const skip = transport({ rejectUnauthorized: false }).t;
    expect((await skip.send({ method: "GET", url: new URL(`${s.url}/v1/sys/health`), headers: {} })).status).toBe(200);
  });

  it("an https address pointed at a plain-HTTP server fails in the handshake (not sent)", async () => {
    const s = await serve((_q, res) => json(res, 200, {}));
    const e = await failure(transport().t.send({ method: "GET", url: new URL(s.url.replace("http:", "https:") + "/v1/sys/health"), headers: {} }));
    expect(e.kind).toBe("tls");
    expect(e.notSent).toBe(true);
    expect(s.seen).toHaveLength(0);
  });
});

describe("timeouts and dropped connections", () => {
  it("a server that never answers times out (may have been sent); a side effect is not replayed, a read is", async () => {
    const s = await serve(() => undefined);
    const { t } = transport({ timeoutMs: scaled(200) });
    const e = await failure(call(t, `${s.url}/v1/database/creds/app`, {}, { sideEffect: true }));
    expect(e.kind).toBe("timeout");
    expect(e.notSent).toBe(false);
    expect(e.unavailable).toBe(true);
    expect(s.seen).toHaveLength(1);
    await failure(call(t, `${s.url}/v1/secret/data/app`));
    expect(s.seen).toHaveLength(4);
    expect(t.requestCount).toBe(4);
  });

  it("a connection dropped after the request was read: side effects sent once, reads retried", async () => {
    const s = await serve((req) => req.socket.destroy());
    const { t } = transport();
    const e = await failure(call(t, `${s.url}/v1/pki/issue/web`, { method: "POST", body: { common_name: "a" } }, { sideEffect: true }));
    expect(e.message).toBe("write pki/issue/web: the connection to the test server was closed before an answer (ECONNRESET)");
    expect(e.notSent).toBe(false);
    expect(s.seen).toHaveLength(1);
    await failure(call(t, `${s.url}/v1/secret/data/app`));
    expect(s.seen).toHaveLength(4);
  });

  it("an answer cut short mid-body is no answer", async () => {
    const s = await serve((_q, res) => {
      res.writeHead(200, { "Content-Type": "application/json", "Content-Length": "1000" });
      res.write('{"data": {"password": "half');
      setImmediate(() => res.socket?.destroy());
    });
    const e = await failure(call(transport().t, `${s.url}/v1/secret/data/app`, {}, { noRetry: true }));
    expect(e.kind).toBe("unreachable");
    expect(e.message).not.toContain("half");
  });

  it("connection refused: not sent, so even a side effect is retried", async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const waits: number[] = [];
    // The port is closed at the first attempt; a server takes the second.
    const url = `http://127.0.0.1:${port}/v1/auth/approle/login`;
    const srv = http.createServer((_q, res) => json(res, 200, { auth: { client_token: "t" } }));
    cleanups.push(() => new Promise<void>((r) => srv.close(() => r())));
    const t2 = new Transport({
      address: "a",
      rejectUnauthorized: true,
      timeoutMs: scaled(2000),
      retries: 2,
      concurrency: 1,
      random: () => 0.5,
      sleep: async (ms) => {
        waits.push(ms);
        await new Promise<void>((r) => srv.listen(port, "127.0.0.1", r));
      },
    });
    cleanups.push(() => t2.close());
    const res = await call(t2, url, { method: "POST", body: {} }, { sideEffect: true });
    expect(res.body).toEqual({ auth: { client_token: "t" } });
    expect(waits).toHaveLength(1);
    expect(t2.requestCount).toBe(2);
  });
});

describe("connections", () => {
  it("keeps one connection alive across sequential requests, and never opens more than `concurrency`", async () => {
    let inFlight = 0;
    let peak = 0;
    const s = await serve((_q, res) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      setTimeout(() => {
        inFlight--;
        json(res, 200, {});
      }, 5);
    });
    const { t } = transport({ concurrency: 3 });
    for (let i = 0; i < 5; i++) await t.send({ method: "GET", url: new URL(`${s.url}/v1/secret/data/a${i}`), headers: {} });
    expect(s.connections()).toBe(1);
    await Promise.all(Array.from({ length: 12 }, (_, i) => t.send({ method: "GET", url: new URL(`${s.url}/v1/secret/data/b${i}`), headers: {} })));
    expect(s.seen).toHaveLength(17);
    expect(peak).toBe(3);
    expect(s.connections()).toBe(3);
  });
});

describe("the retry rules", () => {
  it("retry 5xx (but 501), 412, 429 up to 1 + retries attempts; never 4xx policy answers or a sealed Vault", async () => {
    const cases: Array<[number, unknown, number]> = [
      [500, { errors: ["boom"] }, 3],
      [501, { errors: ["not implemented"] }, 1],
      [412, { errors: ["index"] }, 3],
      [429, { errors: ["slow down"] }, 3],
      [503, { errors: ["Vault is sealed"] }, 1],
      [400, { errors: ["bad"] }, 1],
      [403, { errors: ["permission denied"] }, 1],
      [404, { errors: [] }, 1],
    ];
    for (const [status, body, attempts] of cases) {
      const s = await serve((_q, res) => json(res, status, body));
      const { t } = transport();
      const e = await failure(call(t, `${s.url}/v1/secret/data/app`));
      expect({ status, attempts: s.seen.length }).toEqual({ status, attempts });
      expect(e.status).toBe(status);
    }
  });

  it.each([502, 503, 429])("a side effect is not replayed after a %i (it may have been processed)", async (status) => {
    const s = await serve((_q, res) => json(res, status, { errors: ["upstream"] }, { "Retry-After": "1" }));
    const e = await failure(call(transport().t, `${s.url}/v1/auth/approle/login`, { method: "POST", body: {} }, { sideEffect: true }));
    expect(e.retryable).toBe(true);
    expect(s.seen).toHaveLength(1);
  });

  it("reports each retry with the reason, never the body", async () => {
    const s = await serve((_q, res, _b, n) => (n === 1 ? json(res, 500, { errors: ["internal error"], data: { password: "p4ss" } }) : json(res, 200, {})));
    const seen: string[] = [];
    const { t } = transport({ onRetry: (i) => seen.push(`${i.path} #${i.attempt} ${i.waitMs} ${i.reason}`) });
    await call(t, `${s.url}/v1/secret/data/app`);
    expect(seen).toEqual(["secret/data/app #1 250 read secret/data/app: Vault server error (HTTP 500: internal error)"]);
  });
});

describe("requestName", () => {
  it("reads the op and the Vault path off the URL without the /v1/ prefix, a base path or the query", () => {
    expect(requestName("GET", "/v1/secret/metadata/apps/", "?list=true")).toEqual({ op: "list", vaultPath: "secret/metadata/apps/" });
    expect(requestName("GET", "/v1/secret/data/app", "?version=2")).toEqual({ op: "read", vaultPath: "secret/data/app" });
    expect(requestName("GET", "/proxy/v1/kv/a%20b", "")).toEqual({ op: "read", vaultPath: "kv/a b" });
    expect(requestName("PUT", "/v1/sys/leases/renew", "")).toEqual({ op: "write", vaultPath: "sys/leases/renew" });
    expect(requestName("DELETE", "/v1/secret/data/x", "")).toEqual({ op: "delete", vaultPath: "secret/data/x" });
    // A "%" that is no escape stays as written.
    expect(requestName("GET", "/v1/secret/data/apps/100%", "")).toEqual({ op: "read", vaultPath: "secret/data/apps/100%" });
  });
});
