/**
 * Vault faults (docs/reliability.md §5): every way Vault or the way to it can fail. Bounded
 * retries with backoff where retrying is right, none on 4xx policy answers, files untouched, one
 * line naming the Vault path and what happened.
 */
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Fault } from "../../src/double/vault-double.js";
import { baseLayout, makeTree, snapshot } from "../helpers.js";
import type { Tree } from "../helpers.js";
import { STACK_RE, retryWaitsClock, scaled } from "./support.js";

let t: Tree;
let gen = 0;
/** A foreign server a redirect points at: it records every request's headers. */
const capture = { url: "", seen: [] as string[], server: null as Server | null };
beforeAll(async () => {
  capture.server = createServer((req, res) => {
    capture.seen.push(JSON.stringify(req.headers));
    res.end("{}");
  });
  await new Promise<void>((r) => capture.server?.listen(0, "127.0.0.1", r));
  capture.url = `http://127.0.0.1:${(capture.server.address() as AddressInfo).port}`;
  t = await makeTree({ mode: "in-process" });
  t.double.kvPut("secret", "app", { password: "p0" });
  await t.writeLayout(baseLayout({ vault: { retries: 2, timeout: "400ms" }, sources: { app: { type: "kv", mount: "secret", path: "app", kvVersion: 2 } } }));
  expect((await t.run(["sync"])).code).toBe(0);
});
afterAll(async () => {
  capture.server?.close();
  await t?.cleanup();
});
beforeEach(() => {
  t.double.clearFaults();
  t.double.unseal();
  t.double.setStandby(false);
  t.double.kvPut("secret", "app", { password: `p${++gen}` });
  t.double.clearRequests();
});

interface Case {
  name: string;
  fault?: Omit<Fault, "path">;
  state?: () => void;
  exit: number;
  attempts: number;
  message: RegExp;
  /** Every wait before a retry is at least this long (what Retry-After asked for). */
  minWaitMs?: number;
  vaultPath?: string;
}

const CASES: Case[] = [
  { name: "sealed", state: () => t.double.seal(), exit: 3, attempts: 1, message: /read auth\/token\/lookup-self: Vault is sealed/, vaultPath: "auth/token/lookup-self" },
  { name: "standby with no active node", state: () => t.double.setStandby(true), exit: 3, attempts: 3, message: /auth\/token\/lookup-self: the Vault node is a standby/, vaultPath: "auth/token/lookup-self" },
  { name: "429 with Retry-After: 1", fault: { status: 429, headers: { "Retry-After": "1" } }, exit: 3, attempts: 3, message: /read secret\/data\/app: rate limited by Vault \(HTTP 429\)/, minWaitMs: 1000 },
  { name: "500", fault: { status: 500 }, exit: 3, attempts: 3, message: /read secret\/data\/app: Vault server error \(HTTP 500/ },
  { name: "502", fault: { status: 502 }, exit: 3, attempts: 3, message: /read secret\/data\/app: Vault server error \(HTTP 502/ },
  { name: "503 from a load balancer", fault: { status: 503, body: '{"errors":[]}\n' }, exit: 3, attempts: 3, message: /read secret\/data\/app: Vault unavailable \(HTTP 503/ },
  { name: "a timeout (no answer)", fault: { hang: true }, exit: 3, attempts: 3, message: /read secret\/data\/app: no answer from http:\/\/127\.0\.0\.1:\d+ before the timeout/ },
  { name: "a connection reset", fault: { drop: true }, exit: 3, attempts: 3, message: /read secret\/data\/app: the connection to http:\/\/127\.0\.0\.1:\d+ was closed before an answer/ },
  { name: "malformed JSON", fault: { malformed: true }, exit: 3, attempts: 3, message: /read secret\/data\/app: Vault answered with malformed JSON/ },
  { name: "a proxy's HTML error page", fault: { html: true }, exit: 3, attempts: 3, message: /read secret\/data\/app: HTTP 502 with a non-JSON HTML page/ },
  { name: "a standby's 307 (unavailable; not followed: the token would go along)", fault: { redirectTo: "CAPTURE" }, exit: 3, attempts: 1, message: /read secret\/data\/app: Vault unavailable: HTTP 307 redirect to 127\.0\.0\.1:\d+ \(a standby/ },
  { name: "a 308 (unavailable; not followed)", fault: { redirectTo: "CAPTURE", redirectStatus: 308 }, exit: 3, attempts: 1, message: /read secret\/data\/app: Vault unavailable: HTTP 308 redirect to 127\.0\.0\.1:\d+ \(a standby/ },
  { name: "403 permission denied (policy: no retry)", fault: { status: 403 }, exit: 1, attempts: 1, message: /read secret\/data\/app: permission denied \(the policy needs "read" on "secret\/data\/app"\)/ },
  { name: "404 (no retry)", fault: { status: 404 }, exit: 1, attempts: 1, message: /read secret\/data\/app: no secret at this path/ },
  { name: "400 (no retry)", fault: { status: 400 }, exit: 1, attempts: 1, message: /read secret\/data\/app: HTTP 400/ },
  { name: "501 (no retry)", fault: { status: 501 }, exit: 3, attempts: 1, message: /read secret\/data\/app: Vault server error \(HTTP 501/ },
];

describe("Vault faults", () => {
  it.each(CASES)("$name: exit $exit after $attempts attempt(s), one line naming the path, files untouched", async (c) => {
    const vaultPath = c.vaultPath ?? "secret/data/app";
    if (c.fault) t.double.addFault({ path: vaultPath, ...c.fault, ...(c.fault.redirectTo ? { redirectTo: capture.url } : {}) });
    c.state?.();
    const before = await snapshot(t.publicDir);
    const clock = retryWaitsClock();
    const r = await t.run(["sync"], { clock });
    expect(r.code).toBe(c.exit);
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(c.message);
    expect(lines[0]).toContain(vaultPath);
    expect(r.stderr).not.toMatch(STACK_RE);
    expect(r.stderr).not.toMatch(/<html|AxiosError|X-Vault-Token|"errors"/i);
    expect(t.double.countRequests({ path: vaultPath })).toBe(c.attempts);
    expect(await snapshot(t.publicDir)).toEqual(before);
    expect(await readFile(path.join(t.publicDir, "app.env"), "utf8")).not.toContain(`p${gen}`);
    // Nothing (least of all the token) was sent to where a redirect pointed.
    expect(capture.seen).toEqual([]);
    // -v shows each retry with its wait (backoff), on one line each.
    if (c.attempts > 1 && c.name === "500") {
      t.double.clearRequests();
      const v = await t.run(["sync", "-v"], { clock: retryWaitsClock() });
      const retries = v.stderr.split("\n").filter((l) => /retry \d in \d+ ms/.test(l));
      expect(retries.map((l) => Number(/in (\d+) ms/.exec(l)?.[1]))).toEqual([expect.any(Number), expect.any(Number)]);
      const [w1, w2] = retries.map((l) => Number(/in (\d+) ms/.exec(l)?.[1])) as [number, number];
      expect(w1).toBeGreaterThanOrEqual(180);
      expect(w2).toBeGreaterThan(w1);
    }
    // A wait before each retry; Retry-After is honoured: each wait the client took before a retry
    // is at least what the header asked for.
    expect(clock.waits).toHaveLength(c.attempts - 1);
    if (c.minWaitMs) for (const w of clock.waits) expect(w).toBeGreaterThanOrEqual(c.minWaitMs);
  }, scaled(20_000));

  it("a transient fault is retried and the run succeeds (every retryable kind, once each)", async () => {
    for (const f of [{ status: 500 }, { status: 502 }, { status: 503, body: '{"errors":["no healthy upstream"]}' }, { drop: true }, { malformed: true }, { html: true }, { status: 429, headers: { "Retry-After": "0" } }, { status: 412 }] as Fault[]) {
      t.double.clearRequests();
      t.double.kvPut("secret", "app", { password: `p${++gen}` });
      t.double.addFault({ path: "secret/data/app", times: 1, ...f });
      const r = await t.run(["sync"], { clock: retryWaitsClock() });
      expect({ f, code: r.code, stderr: r.stderr }).toEqual({ f, code: 0, stderr: "" });
      expect(t.double.countRequests({ path: "secret/data/app" })).toBe(2);
      expect(await readFile(path.join(t.publicDir, "app.env"), "utf8")).toBe(`DB_PASSWORD='p${gen}'\n`);
    }
  }, scaled(30_000));
});
