/**
 * The Vault client's retry rules for requests with a side effect, its redirect classification and
 * its error text (redact first, then cut), over real loopback HTTP to the Vault double.
 */
import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { startVaultDouble } from "../../double/vault-double.js";
import type { VaultDouble } from "../../double/vault-double.js";
import { Redactor } from "../support/redact.js";
import { VaultClient } from "./client.js";
import { scaled } from "../../../test/support/scale.js";
import { failure } from "./test-support.js";

let doubles: VaultDouble[] = [];
let clients: VaultClient[] = [];
afterEach(async () => {
  for (const c of clients) c.close();
  await Promise.all(doubles.map((d) => d.close()));
  doubles = [];
  clients = [];
});

function client(address: string, deps: Partial<ConstructorParameters<typeof VaultClient>[1]> = {}): VaultClient {
  const c = new VaultClient(
    { address, namespace: undefined, caCertFile: undefined, tlsServerName: undefined, skipVerify: false, timeoutMs: 2000, retries: 2, concurrency: 4 },
    { sleep: () => Promise.resolve(), random: () => 0.5, ...deps },
  );
  clients.push(c);
  return c;
}

async function double(port = 0): Promise<VaultDouble> {
  const d = await startVaultDouble({ port });
  doubles.push(d);
  d.mountDatabase("database");
  d.addDbRole("database", "app", { defaultTtl: 3600, maxTtl: 7200 });
  return d;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}


describe("requests with a side effect", () => {
  it("are sent once when the connection drops after Vault processed them (no second credential)", async () => {
    const d = await double();
    const c = client(d.url);
    c.setToken(d.rootToken);
    d.addFault({ path: "database/creds/app", dropAfter: true, times: 1 });
    const e = await failure(c.read("database/creds/app", { sideEffect: true }));
    expect(e.kind).toBe("unreachable");
    expect(e.notSent).toBe(false);
    expect(e.unavailable).toBe(true);
    expect(d.countRequests({ path: "database/creds/app" })).toBe(1);
    expect(d.activeLeases("database")).toHaveLength(1);
  });

  it("are sent once on a 5xx, a 429 and a timeout", async () => {
    const d = await double();
    const c = client(d.url);
    c.setToken(d.rootToken);
    for (const f of [{ status: 500 }, { status: 502 }, { status: 429 }, { status: 503, body: '{"errors":["no healthy upstream"]}' }, { drop: true }, { hang: true }]) {
      d.clearRequests();
      d.clearFaults();
      d.addFault({ path: "database/creds/app", ...f });
      const e = await failure(c.read("database/creds/app", { sideEffect: true }));
      expect({ f, retryable: e.retryable, count: d.countRequests({ path: "database/creds/app" }) }).toEqual({ f, retryable: true, count: 1 });
      c.close();
    }
  }, scaled(20_000));

  it("are retried when the connection was refused (the request cannot have reached Vault)", async () => {
    const port = await freePort();
    let d: VaultDouble | undefined;
    const waits: number[] = [];
    // Nothing listens at the first attempt; the double starts during the backoff.
    const c = client(`http://127.0.0.1:${port}`, {
      sleep: async (ms) => {
        waits.push(ms);
        d ??= await double(port);
        c.setToken(d.rootToken);
      },
    });
    const res = await c.read("database/creds/app", { sideEffect: true });
    expect(typeof res.lease_id).toBe("string");
    expect(waits).toHaveLength(1);
    expect(d?.countRequests({ path: "database/creds/app" })).toBe(1);
  });

  it("classifies connect-phase failures as not sent, and failures after sending as possibly sent", async () => {
    const refused = await failure(client(`http://127.0.0.1:${await freePort()}`).read("sys/health", { noRetry: true }));
    expect(refused.notSent).toBe(true);
    const dns = await failure(client("http://vault.invalid:8200").read("sys/health", { noRetry: true }));
    expect(dns.notSent).toBe(true);
    const d = await double();
    d.addFault({ path: "sys/health", drop: true });
    const dropped = await failure(client(d.url).read("sys/health", { noRetry: true }));
    expect(dropped.notSent).toBe(false);
  });

  it("idempotent reads keep the retry policy (3 attempts on a dropped connection)", async () => {
    const d = await double();
    const c = client(d.url);
    c.setToken(d.rootToken);
    d.addFault({ path: "sys/mounts", drop: true });
    await failure(c.read("sys/mounts"));
    expect(d.countRequests({ path: "sys/mounts" })).toBe(3);
  });
});

describe("redirects", () => {
  it.each([307, 308] as const)("a %i is 'Vault unavailable' (exit 3), not retried, naming only the Location's host, for reads, writes and sys/health", async (status) => {
    const d = await double();
    const c = client(d.url);
    c.setToken(d.rootToken);
    d.addFault({ redirectTo: "https://admin:hvs.tokenInLocation@active.vault.example:8200", redirectStatus: status });
    for (const call of [() => c.read("secret/data/app"), () => c.write("auth/approle/login", { role_id: "r", secret_id: "s" }, { sideEffect: true }), () => c.health()]) {
      d.clearRequests();
      const e = await failure(call());
      expect(e.unavailable).toBe(true);
      expect(e.exit).toBe(3);
      expect(e.code).toBe("VAULT_STANDBY");
      expect(e.message).toMatch(new RegExp(`Vault unavailable: HTTP ${status} redirect to active\\.vault\\.example:8200 \\(a standby`));
      expect(e.message + (e.hint ?? "")).not.toMatch(/hvs\.|admin|\/v1\//);
      expect(d.countRequests()).toBe(1);
    }
  });
});

describe("Vault's error text: redact first, then cut", () => {
  it("a secret straddling the 300-character cut never leaves its prefix, and a character is never split", async () => {
    const d = await double();
    const secret = "Zq8-SECRET-VALUE-wXy";
    const r = new Redactor();
    r.add(secret);
    const c = client(d.url, { redact: (t) => r.redact(t) });
    c.setToken(d.rootToken);
    // The secret starts 5 characters before the cut.
    d.addFault({ path: "database/creds/app", status: 400, body: JSON.stringify({ errors: ["x".repeat(295) + secret + " tail"] }) });
    const e = await failure(c.read("database/creds/app"));
    expect(e.message).not.toContain(secret.slice(0, 3));
    expect(e.message).toMatch(/x{295}\[REDA/);
    // An emoji (a surrogate pair) straddling the cut is dropped whole.
    d.clearFaults();
    d.addFault({ path: "database/creds/app", status: 400, body: JSON.stringify({ errors: ["y".repeat(299) + "😀 and more"] }) });
    const e2 = await failure(c.read("database/creds/app"));
    const text = /HTTP 400: (.*)$/.exec(e2.message)?.[1] ?? "";
    expect(text).toBe("y".repeat(299) + "…");
    expect(e2.message).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/);
  });
});

describe("paths node-vault would mangle", () => {
  /** A server that records each request's method and raw URL and answers 200 {}. */
  async function recorder(): Promise<{ url: string; seen: string[]; close: () => Promise<void> }> {
    const seen: string[] = [];
    const srv = createHttpServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      req.resume();
      req.on("end", () => {
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end('{"auth":{"client_token":"t"}}');
      });
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, seen, close: () => new Promise<void>((r) => srv.close(() => r())) };
  }

  it("an AppRole mount with characters mustache escapes is logged in to at its own path", async () => {
    const r = await recorder();
    try {
      const c = client(r.url);
      await c.approleLogin("team=a&b", "role", "secret");
      await c.approleLogin("team/approle", "role", "secret");
      expect(r.seen).toEqual(["POST /v1/auth/team=a&b/login", "POST /v1/auth/team/approle/login"]);
    } finally {
      await r.close();
    }
  });

  it("a '%' that is no escape in a KV path is sent as written and named as written", async () => {
    const r = await recorder();
    try {
      const c = client(r.url);
      await c.read("secret/data/apps/100%");
      expect(r.seen).toEqual(["GET /v1/secret/data/apps/100%"]);
    } finally {
      await r.close();
    }
    const d = await double();
    const c = client(d.url);
    c.setToken(d.rootToken);
    const e = await failure(c.read("secret/data/apps/100%"));
    expect(e.message).toContain("read secret/data/apps/100%:");
  });
});

describe("requests Node refuses to send", () => {
  it("a token Node cannot put in a header fails the call naming the header, never the token", async () => {
    const d = await double();
    const c = client(d.url);
    const token = "hvs.SECRET-TOKEN-VALUE\nX-Injected: 1";
    c.setToken(token);
    let err: unknown;
    try {
      await c.read("secret/data/app");
    } catch (e) {
      err = e;
    }
    const text = JSON.stringify({ m: (err as Error).message, h: (err as { hint?: string }).hint, s: String(err) });
    expect((err as { code?: string }).code).toBe("INTERNAL");
    expect(text).toContain("X-Vault-Token");
    expect(text).not.toContain("SECRET-TOKEN-VALUE");
    expect(d.countRequests()).toBe(0);
  });
});
