/**
 * The simulated calendar of cron runs shared by `simulated-days.test.ts` (the short calendar, in
 * `npm test`) and `simulated-90-days.slow.test.ts` (the full 90 days, `npm run test:slow`).
 *
 * N simulated days of cron: `sync` every 5 minutes (25,920 runs) against the Vault double, with
 * one fake clock shared by vault-render's core and the double. Token TTL 1 h / max TTL 24 h, a
 * database lease of TTL 1 h / max TTL 24 h, a certificate renewed before expiry (30 days, renewed
 * 10 days before, over 90 days; 30 h renewed 12 h before over the short calendar), a KV value
 * that changes every day.
 *
 * A child process per run would take ~1.5 h here, so each run calls `runSync` — the function the
 * `sync` command calls — with the options the CLI layer builds (`commonSyncOptions`), a fresh
 * logger and redactor as a new process would have, the real layout file, real agent-only/ and
 * public/ directories, real files, and real HTTP over loopback to the double through node-vault.
 * Nothing is mocked. Between runs the clock is stepped minute by minute and, for every simulated
 * minute, the test asserts against the double's own model (in memory, no HTTP):
 *   - the token in agent-only/token is live;
 *   - the database credentials in public/db.env belong to a live lease;
 *   - the certificate in public/certs/web has notBefore <= now < notAfter, matches its key and
 *     was issued by the double;
 *   - public/app.env holds the current KV value, or one that changed less than 5 minutes ago.
 * Per simulated day the requests the double received are bounded (the bound is derived from the
 * layout below) and reported.
 */
import { X509Certificate, createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { expect } from "vitest";
import type { CommandContext, GlobalOptions } from "../../src/commands/context.js";
import { commonSyncOptions, formatFor, levelFor, parseLockTimeout } from "../../src/commands/context.js";
import type { Clock } from "../../src/core/support/clock.js";
import { ExitCode } from "../../src/core/support/errors.js";
import { createLogger } from "../../src/core/support/log.js";
import { Redactor } from "../../src/core/support/redact.js";
import { runSync } from "../../src/core/sync/sync.js";
import { startVaultDouble } from "../../src/double/vault-double.js";
import type { VaultDouble } from "../../src/double/vault-double.js";
import { PKI_LEASE_RULES } from "../helpers.js";
import { rng } from "./support.js";

const MIN = 60_000;
const HOUR = 60 * MIN;
/**
 * A calendar: how many days, and the certificate's TTL and renewal threshold (hours). The token
 * and the lease keep their TTLs (1 h, max 24 h) at every size, so every day holds a re-login at the
 * token's max TTL and a lease replacement at the lease's.
 */
export interface Calendar {
  days: number;
  certTtlH: number;
  certRenewBeforeH: number;
}
/** The full 90 days: a 30-day certificate renewed 10 days before expiry, issued on days 0, 20, 40, 60 and 80. */
export const NINETY_DAYS: Calendar = { days: 90, certTtlH: 30 * 24, certRenewBeforeH: 10 * 24 };
/**
 * The short calendar of `npm test`: 2 days (576 runs) cross every lifecycle event the 90 days
 * do: token renewals, the re-login at the token's max TTL, lease renewals and the replacement at
 * the lease's max TTL (day 1, 00:00), a KV change (day 1, 07:13), and certificate re-issues: a
 * 30 h certificate renewed 12 h before expiry is issued at 0 h, 18 h and 36 h.
 */
export const TWO_DAYS: Calendar = { days: 2, certTtlH: 30, certRenewBeforeH: 12 };
export const CRON_MIN = 5;
const RUNS_PER_DAY = (24 * 60) / CRON_MIN;
/** The KV value changes once a day at 07:13, between two cron runs. */
const KV_CHANGE_AT = 7 * HOUR + 13 * MIN;
/** A fixed start, far from the real date: anything reading the real clock would show. */
const START = Date.UTC(2031, 0, 1);

export const TOKEN_TTL = 3600;
export const TOKEN_MAX_TTL = 86_400;
export const LEASE_TTL = 3600;
export const LEASE_MAX_TTL = 86_400;

export const POLICY = `
path "secret/data/*" { capabilities = ["read"] }
${PKI_LEASE_RULES}`;

const HOOK_LOG = "hooks.log";
export function layout(cal: Calendar) {
  return {
  version: 1,
  auth: { approle: { roleIdFile: "approle/role_id", secretIdFile: "approle/secret_id" } },
  sources: {
    app: { type: "kv", mount: "secret", path: "app" },
    db: { type: "lease", path: "database/creds/app" },
  },
  hooks: { restart: { command: `echo "$VAULT_RENDER_CHANGED_FILES" | tr '\\n' ' ' >> ${HOOK_LOG}; echo >> ${HOOK_LOG}`, shell: true } },
  outputs: [
    { file: "app.env", format: "env", keys: { API_KEY: "app.api_key" }, hooks: ["restart"] },
    { file: "db.env", format: "env", keys: { DB_USER: "db.username", DB_PASSWORD: "db.password" }, hooks: ["restart"] },
    { format: "pki", dir: "certs/web", mount: "pki_int", role: "web", commonName: "web.home.arpa", ttl: `${cal.certTtlH}h`, renewBefore: `${cal.certRenewBeforeH}h`, hooks: ["restart"] },
  ],
  };
}
/** Sources read on every run (KV); the lease source is read only when it is replaced. */
const STATIC_SOURCES = 1;

/**
 * Requests per simulated day, derived from the layout and the TTLs above:
 * - every run: lookup-self + one read per static source;
 * - the token is renewed when below half its TTL (30 min), and a renewal gives 1 h, so at most
 *   one renewal per 30 min (48/day) plus one per run in the last 30 min before its max TTL (6),
 *   then one login;
 * - the re-login lands in the last run before the max TTL or the first one after it, so it moves
 *   0 or 5 minutes earlier each day and a day can hold two logins;
 * - the lease likewise: at most 48 + 6 renewals; replacements (read + revocation of the old one):
 *   one at its max TTL, one per login (the token that created it dies: its leases die with it);
 * - the certificate: at most one issue;
 * - one KV version preflight on the very first run.
 */
const TOKEN_RENEWALS_MAX = (24 * 60) / (TOKEN_TTL / 2 / 60) + (TOKEN_TTL / 2 / 60) / CRON_MIN;
const LEASE_RENEWALS_MAX = (24 * 60) / (LEASE_TTL / 2 / 60) + (LEASE_TTL / 2 / 60) / CRON_MIN;
const LOGINS_MAX = 2;
const LEASE_REPLACEMENTS_MAX = 1 + LOGINS_MAX;
const DAILY_BOUND = RUNS_PER_DAY * (1 + STATIC_SOURCES) + TOKEN_RENEWALS_MAX + LOGINS_MAX + LEASE_RENEWALS_MAX + 2 * LEASE_REPLACEMENTS_MAX + 1 + 1;
const DAILY_FLOOR = RUNS_PER_DAY * (1 + STATIC_SOURCES);

/** A run reaches Vault 0.2–3 s after its cron minute; the minute's second check is at :30. */
const JITTER_MIN_MS = 200;
const JITTER_MAX_MS = 3000;
const AFTER_RUN_MS = 30_000;
const SEED = Number(process.env.SIM_SEED ?? Math.floor(Math.random() * 2 ** 31));

// A seeded schedule: a failing one replays with SIM_SEED.
const jitter = rng(SEED);

class FakeClock implements Clock {
  t = START;
  sleeps = 0;
  now = (): number => this.t;
  /**
   * Simulated time does not pass during a run. A wait that something ends (the lock's heartbeat,
   * a hook's timeout, ended when the hook exits) resolves when its signal is aborted; any other
   * wait (a retry, a lock wait) would be a finding: counted, and resolved at once.
   */
  sleep = (_ms: number, signal?: AbortSignal): Promise<void> => {
    if (signal) {
      return new Promise((resolve) => {
        if (signal.aborted) return resolve();
        signal.addEventListener("abort", () => resolve(), { once: true });
      });
    }
    this.sleeps++;
    return new Promise((resolve) => setImmediate(resolve));
  };
  random = (): number => Math.random();
}

export function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z_]+)='([^']*)'$/.exec(line);
    if (m) out[m[1] as string] = m[2] as string;
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

interface Cert {
  pem: string;
  serial: string;
  notBefore: number;
  notAfter: number;
}

/**
 * Run the calendar: sync every 5 minutes; at every simulated minute the token, the lease's
 * credentials and the certificate on disk are live, KV is at most 5 minutes stale; requests per
 * day bounded. Throws (an assertion) on the first finding.
 */
export async function simulateCron(cal: Calendar): Promise<void> {
  const DAYS = cal.days;
  const CERT_TTL_H = cal.certTtlH;
  const CERT_RENEW_BEFORE_H = cal.certRenewBeforeH;
  const LAYOUT = layout(cal);
  // tmpfs when there is one: the run's fsyncs are the product's, the disk is the harness's.
  const dir = await mkdtemp(path.join("/dev/shm", "vr-sim-")).catch(() => mkdtemp(path.join(tmpdir(), "vr-sim-")));
  const double: VaultDouble = await startVaultDouble();
  try {
        const clock = new FakeClock();
        double.setClock(clock.now);
        double.mountKv("secret", 2);
        double.addPolicy("app", POLICY);
        const { roleId } = double.addAppRole({ roleName: "app", policies: ["app"], tokenTtl: TOKEN_TTL, tokenMaxTtl: TOKEN_MAX_TTL });
        const sid = double.generateSecretId("app");
        if (!("secretId" in sid)) throw new Error("expected a plain secret id");
        double.mountDatabase("database");
        double.addDbRole("database", "app", { defaultTtl: LEASE_TTL, maxTtl: LEASE_MAX_TTL });
        double.mountPki("pki_int");
        // RSA keys, the double's default, as the 90 days always used: a handful of issues per calendar, from the double's warm key pool.
        double.addPkiRole("pki_int", "web", { allowedDomains: ["home.arpa"], allowSubdomains: true, maxTtl: 90 * 86_400 });
  
        const agentDir = path.join(dir, "agent-only");
        const publicDir = path.join(dir, "public");
        await mkdir(path.join(agentDir, "approle"), { recursive: true, mode: 0o700 });
        await writeFile(path.join(agentDir, "approle", "role_id"), roleId + "\n", { mode: 0o600 });
        await writeFile(path.join(agentDir, "approle", "secret_id"), sid.secretId + "\n", { mode: 0o600 });
        const layoutFile = path.join(dir, "vault-layout.json");
        await writeFile(layoutFile, JSON.stringify(LAYOUT, null, 2));
  
        // What the CLI entry builds for `vault-render --layout <file> sync`, fresh per run (a cron
        // run is a new process: new redactor, new logger).
        let logText = "";
        const sink = new Writable({
          write(chunk: Buffer, _enc, cb) {
            logText += chunk.toString("utf8");
            cb();
          },
        });
        const g: GlobalOptions = { layout: layoutFile, verbose: false, debug: false };
        const oneRun = async () => {
          const redactor = new Redactor();
          const ctx: CommandContext = {
            env: { VAULT_ADDR: double.url },
            stdout: sink,
            stderr: sink,
            isTTY: false,
            stdoutIsTTY: false,
            clock,
            redactor,
            logger: (level, format) => createLogger({ level, format, out: sink, redactor }),
            setExit: () => undefined,
          };
          return runSync({
            ...commonSyncOptions(ctx, g),
            log: ctx.logger(levelFor(g, "warn"), formatFor(g, ctx)),
            dryRun: false,
            lockTimeoutMs: parseLockTimeout("30s"),
            noHooks: false,
            runHooks: false,
          });
        };
  
        const fail = (minute: number, what: string): never => {
          const d = Math.floor(minute / 1440);
          const hm = `${String(Math.floor((minute % 1440) / 60)).padStart(2, "0")}:${String(minute % 60).padStart(2, "0")}`;
          throw new Error(`simulated minute ${minute} (day ${d} ${hm}, at ${new Date(clock.t).toISOString()}, SIM_SEED=${SEED}): ${what}`);
        };
  
        let kvValue = "";
        let kvChangedAt = -Infinity;
        let kvPrevious = "";
        const putKv = (day: number) => {
          kvPrevious = kvValue;
          kvValue = `api-key-day-${day}-${Math.random().toString(36).slice(2, 10)}`;
          double.kvPut("secret", "app", { api_key: kvValue });
          kvChangedAt = clock.t;
        };
        putKv(0);
  
        // What is on disk (files change only inside a run, so they are read after each run).
        let token = "";
        let db: Record<string, string> = {};
        let app: Record<string, string> = {};
        let cert: Cert | null = null;
        let certText = "";
  
        const perDay: Array<{ requests: number; logins: number; replaced: number; issued: number }> = [];
        let day = { requests: 0, logins: 0, replaced: 0, issued: 0 };
        let runs = 0;
        let clientRequests = 0;
        let expiredLookups = 0;
        let lastLeaseId = "";
        let lastLoginAt: number | null = null;
        let leaseIssuedAt: number | null = null;
        const usernames = new Set<string>();
        const serials = new Set<string>();
        const issuedSerials = () => new Set(double.pkiIssued("pki_int").map((c) => c.serial.toUpperCase().replace(/:/g, "")));
  
        // What is on disk is live in the double at this instant.
        const check = (m: number) => {
          const now = clock.t;
          if (!double.tokenInfo(token)) fail(m, "the token in agent-only/token is not live in the double");
          if (!db.DB_USER || !db.DB_PASSWORD || !double.dbCredentialValid(db.DB_USER, db.DB_PASSWORD)) {
            const info = double.leaseInfo(lastLeaseId);
            fail(m, `the database credentials in public/db.env belong to no live lease (lease ${lastLeaseId}: ${JSON.stringify(info)})`);
          }
          if (!cert || !(cert.notBefore <= now && now < cert.notAfter)) fail(m, `the certificate on disk is not valid now (${cert ? `${new Date(cert.notBefore).toISOString()} .. ${new Date(cert.notAfter).toISOString()}` : "none"})`);
          const fresh = app.API_KEY === kvValue || (app.API_KEY === kvPrevious && now - kvChangedAt < CRON_MIN * MIN + JITTER_MAX_MS);
          if (!fresh) fail(m, `public/app.env is stale (changed ${(now - kvChangedAt) / MIN} min ago)`);
        };
  
        const cpu0 = process.cpuUsage();
        const wall0 = performance.now();
        const totalMinutes = DAYS * 1440;
        for (let m = 0; m < totalMinutes; m++) {
          const minuteStart = START + m * MIN;
          clock.t = minuteStart;
          if (m > 0 && m % 1440 === 0) {
            perDay.push(day);
            day = { requests: 0, logins: 0, replaced: 0, issued: 0 };
          }
          if (m % 1440 === KV_CHANGE_AT / MIN && m >= 1440) putKv(Math.floor(m / 1440));
  
          // At the start of every simulated minute, before a run of this minute.
          if (runs > 0) check(m);
          if (m % CRON_MIN === 0) {
            // cron starts the run at the minute; it reaches Vault a little later, never at the
            // same offset twice (exact ties between TTLs and the schedule would be an artefact).
            clock.t = minuteStart + JITTER_MIN_MS + Math.floor(jitter() * (JITTER_MAX_MS - JITTER_MIN_MS));
            const before = double.requests.length;
            const res = await oneRun();
            runs++;
            if (res.exit !== ExitCode.Ok) fail(m, `sync exited ${res.exit}: ${res.results.filter((r) => r.action === "failed").map((r) => `${r.file}: ${r.error?.message}`).join("; ")}\n${logText}`);
            if (logText) fail(m, `sync logged at warn level or above:\n${logText}`);
            const seen = double.requests.slice(before);
            double.clearRequests();
            if (seen.length !== res.requests) fail(m, `the double saw ${seen.length} requests, the client counted ${res.requests}`);
            // The one refusal allowed: a token that reached its max TTL exactly at this run (the
            // last run before saw exactly 300 s left, not below the re-login threshold), which the
            // run answers with a login.
            const refused = seen.filter((r) => r.status >= 400);
            const expiredLookup = refused.length === 1 && refused[0]?.path === "auth/token/lookup-self" && refused[0].status === 403 && seen[1]?.path === "auth/approle/login";
            if (refused.length && !expiredLookup) fail(m, `a request failed: ${refused.map((r) => `${r.method} ${r.path} ${r.status}`).join(", ")}`);
            if (expiredLookup) expiredLookups++;
            clientRequests += res.requests;
            day.requests += seen.length;
            const loggedIn = seen.some((r) => r.path === "auth/approle/login");
            const replaced = seen.some((r) => r.path === "database/creds/app");
            day.logins += seen.filter((r) => r.path === "auth/approle/login").length;
            day.replaced += seen.filter((r) => r.path === "database/creds/app").length;
            // A login only near the token's max TTL: never after it by more than one cron period,
            // and earlier only by the life of a lease it must replace (new credentials are read by a
            // new token when the old one would die before them).
            if (loggedIn) {
              if (lastLoginAt !== null && (clock.t - lastLoginAt < (TOKEN_MAX_TTL - LEASE_TTL) * 1000 - CRON_MIN * MIN || clock.t - lastLoginAt > TOKEN_MAX_TTL * 1000 + CRON_MIN * MIN)) {
                fail(m, `a login ${(clock.t - lastLoginAt) / MIN} min after the previous one (token max TTL ${TOKEN_MAX_TTL / 60} min)`);
              }
              lastLoginAt = clock.t;
            }
            // New credentials only with a cause: a new token (the old one's leases die with it), or
            // the lease within its renewal threshold (half its TTL) of its max TTL.
            if (replaced) {
              if (leaseIssuedAt !== null && !loggedIn && clock.t - leaseIssuedAt < LEASE_MAX_TTL * 1000 - (LEASE_TTL / 2) * 1000 - CRON_MIN * MIN) {
                fail(m, `the lease was replaced ${(clock.t - leaseIssuedAt) / MIN} min after it was issued, without a new token`);
              }
              leaseIssuedAt = clock.t;
            }
            day.issued += seen.filter((r) => r.path === "pki_int/issue/web").length;
  
            // Synchronous reads: no thread-pool round trips for the harness's own look at the disk.
            token = readFileSync(path.join(agentDir, "token"), "utf8").trim();
            db = parseEnv(readFileSync(path.join(publicDir, "db.env"), "utf8"));
            app = parseEnv(readFileSync(path.join(publicDir, "app.env"), "utf8"));
            if (db.DB_USER) usernames.add(db.DB_USER);
            const text = readFileSync(path.join(publicDir, "certs/web/cert.pem"), "utf8");
            if (text !== certText) {
              certText = text;
              const x = new X509Certificate(text);
              const key = createPrivateKey(readFileSync(path.join(publicDir, "certs/web/key.pem")));
              if (!x.checkPrivateKey(key)) fail(m, "the key on disk does not match the certificate");
              if (!issuedSerials().has(x.serialNumber.toUpperCase())) fail(m, `certificate ${x.serialNumber} on disk was not issued by the double`);
              cert = { pem: text, serial: x.serialNumber, notBefore: Date.parse(x.validFrom), notAfter: Date.parse(x.validTo) };
              serials.add(x.serialNumber);
            }
            const state = JSON.parse(readFileSync(path.join(agentDir, "state.json"), "utf8")) as { leases: Record<string, { leaseId: string }> };
            lastLeaseId = state.leases.db?.leaseId ?? "";
            // And again after the run, within its minute.
            clock.t = minuteStart + AFTER_RUN_MS;
            check(m);
          }
  
        }
        perDay.push(day);
        const cpu = process.cpuUsage(cpu0);
        const wallMs = performance.now() - wall0;
        const hookRuns = (await readFile(path.join(dir, HOOK_LOG), "utf8")).trim().split("\n");
  
        const req = perDay.map((d) => d.requests);
        const sum = (f: (d: (typeof perDay)[number]) => number) => perDay.reduce((a, d) => a + f(d), 0);
        const report = {
          simulatedDays: DAYS,
          seed: SEED,
          runs,
          requests: clientRequests,
          requestsPerDay: { min: Math.min(...req), median: median(req), max: Math.max(...req), bound: DAILY_BOUND, floor: DAILY_FLOOR },
          logins: sum((d) => d.logins),
          loginsAfterTokenExpired: expiredLookups,
          leaseReplacements: sum((d) => d.replaced),
          distinctDbUsers: usernames.size,
          certIssues: sum((d) => d.issued),
          distinctCerts: serials.size,
          hookRuns: hookRuns.length,
          clockSleeps: clock.sleeps,
          // Reported, never asserted: CPU (user+sys of this process) and wall time per run.
          cpuMsPerRun: Number(((cpu.user + cpu.system) / 1000 / runs).toFixed(2)),
          wallMsPerRun: Number((wallMs / runs).toFixed(2)),
          wallSeconds: Math.round(wallMs / 1000),
        };
        console.log(`simulated ${DAYS} days: ${JSON.stringify(report)}`);
        console.log(`simulated ${DAYS} days, per day (requests/logins/lease replacements/cert issues): ${perDay.map((d) => `${d.requests}/${d.logins}/${d.replaced}/${d.issued}`).join(" ")}`);
  
        expect(runs).toBe(DAYS * RUNS_PER_DAY);
        expect(clock.sleeps).toBe(0);
        for (const [i, d] of perDay.entries()) {
          expect(d.requests, `day ${i}`).toBeLessThanOrEqual(DAILY_BOUND);
          expect(d.requests, `day ${i}`).toBeGreaterThanOrEqual(DAILY_FLOOR);
          // Logins and replacements per day (their spacing is checked run by run above); day 0 has the
          // first lease on top.
          expect(d.logins, `day ${i}`).toBeLessThanOrEqual(LOGINS_MAX);
          expect(d.replaced, `day ${i}`).toBeLessThanOrEqual(LEASE_REPLACEMENTS_MAX + (i === 0 ? 1 : 0));
        }
        // The token hits its max TTL every day; the lease its max TTL every day.
        expect(report.logins).toBeGreaterThanOrEqual(DAYS);
        expect(report.leaseReplacements).toBeGreaterThanOrEqual(DAYS);
        // Once a day: the lease at its max TTL is read by a new token (logging in first), so the
        // login does not replace it a second time. Day 0 adds the first lease, and the day the max
        // TTL is first learned may add one more.
        expect(report.leaseReplacements).toBeLessThanOrEqual(DAYS + 2);
        // Renewed once per (TTL - renewBefore): 90 days with a 30-day certificate renewed 10 days before
        // expiry: issued on days 0, 20, 40, 60, 80; 2 days with 30 h renewed 12 h before: 0 h, 18 h, 36 h.
        expect(report.certIssues).toBe(Math.ceil(DAYS / (CERT_TTL_H / 24 - CERT_RENEW_BEFORE_H / 24)));
        expect(report.distinctCerts).toBe(report.certIssues);
        // The hook runs once per run in which something changed; never more than changes happened.
        expect(report.hookRuns).toBeLessThanOrEqual(DAYS + report.leaseReplacements + report.certIssues);
        expect(report.hookRuns).toBeGreaterThanOrEqual(DAYS);
        // Every replaced lease was revoked once its successor was on disk: one live lease at the end.
        expect(double.activeLeases("database")).toEqual([lastLeaseId]);
  } finally {
    await double.close();
    await rm(dir, { recursive: true, force: true });
  }
}
