/**
 * The simulated calendar of cron (see simulation.ts) at the size of `npm test`: 2 simulated days
 * (576 in-process runs) with a 30 h certificate renewed 12 h before expiry, which cross every
 * lifecycle event of the full 90 days (`simulated-90-days.slow.test.ts`, `npm run test:slow`);
 * plus the built CLI, a child process per run, over the first 30 simulated minutes.
 */
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { makeTree } from "../helpers.js";
import { CRON_MIN, LEASE_MAX_TTL, LEASE_TTL, POLICY, TOKEN_MAX_TTL, TOKEN_TTL, TWO_DAYS, layout, parseEnv, simulateCron } from "./simulation.js";
import { scaled } from "./support.js";

/** The CLI smoke: the first 30 simulated minutes (7 runs), up to the token's and the lease's first renewal. */
const SMOKE_RUNS = 30 / CRON_MIN + 1;

describe("2 simulated days of cron", () => {
  it(
    "sync every 5 minutes: at every simulated minute the token, the lease's credentials and the certificate on disk are live, KV is at most 5 minutes stale; requests per day bounded; every lifecycle event crossed",
    () => simulateCron(TWO_DAYS),
    // 576 runs at ~16 ms each on an idle 2-core machine; a limit for a slow or busy one.
    scaled(120_000),
  );

  it("the built CLI, a child process per run (VAULT_RENDER_TEST_NOW_OFFSET), over the first 30 simulated minutes: everything on disk live after every run, one renewal each of the token and the lease", async () => {
    const t = await makeTree({ policy: POLICY, tokenTtl: TOKEN_TTL, tokenMaxTtl: TOKEN_MAX_TTL });
    try {
      t.double.mountDatabase("database");
      t.double.addDbRole("database", "app", { defaultTtl: LEASE_TTL, maxTtl: LEASE_MAX_TTL });
      t.double.mountPki("pki_int");
      // EC keys: nothing here depends on the key type, and the double's RSA key generation (0.3-1.5 s a key) would be the test's time.
      t.double.addPkiRole("pki_int", "web", { allowedDomains: ["home.arpa"], allowSubdomains: true, maxTtl: 90 * 86_400, keyType: "ec" });
      t.double.kvPut("secret", "app", { api_key: "smoke-1" });
      await t.writeLayout(layout(TWO_DAYS));
      for (let i = 0; i < SMOKE_RUNS; i++) {
        if (i === 4) t.double.kvPut("secret", "app", { api_key: "smoke-2" });
        const before = t.double.requests.length;
        // The built CLI through the test entry (test/support/cli-with-hooks.js), which reads the offset.
        const r = await t.run(["sync"], { mode: "child", env: { VAULT_RENDER_TEST_NOW_OFFSET: String(i * CRON_MIN * 60) } });
        expect(r, `run ${i}`).toMatchObject({ code: 0, stderr: "" });
        const seen = t.double.requests.slice(before);
        expect(seen.filter((q) => q.status >= 400), `run ${i}`).toEqual([]);
        // lookup-self (or the first login) and the KV read, at most 9 with every lifecycle event at once.
        expect(seen.length, `run ${i}`).toBeGreaterThanOrEqual(2);
        expect(seen.length, `run ${i}`).toBeLessThanOrEqual(9);
        const db = parseEnv(readFileSync(path.join(t.publicDir, "db.env"), "utf8"));
        expect(t.double.dbCredentialValid(db.DB_USER ?? "", db.DB_PASSWORD ?? ""), `run ${i}`).toBe(true);
        expect(t.double.tokenInfo(readFileSync(path.join(t.agentDir, "token"), "utf8").trim()), `run ${i}`).toBeDefined();
        expect(parseEnv(readFileSync(path.join(t.publicDir, "app.env"), "utf8")).API_KEY, `run ${i}`).toBe(i >= 4 ? "smoke-2" : "smoke-1");
        const x = new X509Certificate(readFileSync(path.join(t.publicDir, "certs/web/cert.pem")));
        expect(Date.parse(x.validFrom) <= t.double.now() && t.double.now() < Date.parse(x.validTo), `run ${i}`).toBe(true);
        t.double.advanceTime(CRON_MIN * 60);
      }
      // One login, one lease, one certificate; the token and the lease each renewed once past half
      // their TTL (the last run is 30 simulated minutes plus the real seconds the runs took).
      expect(t.double.countRequests({ path: "auth/approle/login" })).toBe(1);
      expect(t.double.countRequests({ path: "database/creds/app" })).toBe(1);
      expect(t.double.countRequests({ path: "pki_int/issue/web" })).toBe(1);
      expect(t.double.countRequests({ path: "auth/token/renew-self" })).toBe(1);
      expect(t.double.countRequests({ path: "sys/leases/renew" })).toBe(1);
    } finally {
      await t.cleanup();
    }
  }, scaled(120_000));
});
