import { describe, expect, it } from "vitest";
import type { AuthResult } from "./auth.js";
import { resolveLayoutText } from "../layout/load.js";
import { decideLease } from "./leases.js";
import type { LeaseSpec } from "./leases.js";
import { emptyState } from "../state/state.js";
import type { State } from "../state/state.js";
import { leaseOwnerGone, recordToken, tokenMaxTtlWarning } from "./token-horizon.js";

const KEY = Buffer.alloc(32, 7);
const H = 3_600_000;

const layout = resolveLayoutText(
  "/srv/vault/layout.json",
  JSON.stringify({
    version: 1,
    auth: { approle: { roleIdFile: "approle/role_id", secretIdFile: "approle/secret_id", roleName: "hosts" } },
    sources: { db: { type: "lease", path: "database/creds/app" } },
    outputs: [
      { file: "db.env", format: "env", keys: { P: "db.password" } },
      { format: "pki", dir: "certs/web", mount: "pki_int", role: "web", commonName: "web.home.arpa", ttl: "720h" },
      { format: "pki", dir: "certs/short", mount: "pki_int", role: "web", commonName: "s.home.arpa", ttl: "30m" },
    ],
  }),
  {},
);

function auth(via: AuthResult["via"], token: string, facts: Partial<NonNullable<AuthResult["facts"]>> = {}): AuthResult {
  return { token, via, ttl: 600, facts: { accessor: `acc-${token}`, issuedAt: 0, expiresAt: 600_000, period: 0, maxExpiresAt: null, ...facts } };
}

function withLease(s: State, duration: number): State {
  s.leases.db = { leaseId: "database/creds/app/x", path: "database/creds/app", issuedAt: 0, expiresAt: duration * 1000, duration, renewable: true };
  return s;
}

describe("the AppRole token's max TTL warning", () => {
  it("stays silent while the max TTL is unknown, then names every lease and certificate set that outlives it, and the fix", () => {
    const s = withLease(emptyState(), 2 * 3600);
    recordToken(s, KEY, auth("login", "t1"));
    expect(tokenMaxTtlWarning(layout, s)).toBeNull();
    // A capped renewal (auth.ts) reports the max TTL: 1 h.
    recordToken(s, KEY, auth("renewed", "t1", { maxExpiresAt: H, maxTtl: 3600 }));
    const w = tokenMaxTtlWarning(layout, s);
    expect(w).toMatch(/^the AppRole token's max TTL \(60m\) is shorter than the TTL of lease "db" \(2h\), certificate set "certs\/web" \(30d\): /);
    expect(w).not.toContain("certs/short");
    expect(w).toContain("Vault revokes a lease with the token that created it");
    expect(w).toContain("a PKI role with generate_lease has its certificates revoked with the token");
    expect(w).toContain("vault write auth/approle/role/hosts token_period=<e.g. 24h> token_max_ttl=0");
    // The max TTL is the role's: it carries over to the next token (and gives its horizon).
    const cur = recordToken(s, KEY, auth("login", "t2", { issuedAt: 10 * H, expiresAt: 10 * H + 600_000 }));
    expect(cur.goneBy).toBe(11 * H);
    expect(tokenMaxTtlWarning(layout, s)).not.toBeNull();
  });

  it("says nothing for a periodic token, or once the token outlives the learned max TTL (the role was changed)", () => {
    const s = withLease(emptyState(), 2 * 3600);
    recordToken(s, KEY, auth("renewed", "t1", { maxExpiresAt: H, maxTtl: 3600 }));
    recordToken(s, KEY, auth("cached", "t1", { period: 86400, expiresAt: 86_400_000 }));
    expect(s.token?.maxTtl).toBeNull();
    expect(tokenMaxTtlWarning(layout, s)).toBeNull();
    const s2 = withLease(emptyState(), 2 * 3600);
    recordToken(s2, KEY, auth("renewed", "t1", { maxExpiresAt: H, maxTtl: 3600 }));
    recordToken(s2, KEY, auth("cached", "t3", { issuedAt: 0, expiresAt: 5 * H }));
    expect(tokenMaxTtlWarning(layout, s2)).toBeNull();
  });
});

describe("a lease's creating token", () => {
  const spec = { type: "lease", path: "database/creds/app" } as LeaseSpec;
  it("keeps a healthy lease of the current token, replaces one of another token, and an untracked one only after a login", () => {
    const s = withLease(emptyState(), 3600);
    const cur = recordToken(s, KEY, auth("cached", "t1"));
    const rec = s.leases.db as NonNullable<State["leases"]["db"]>;
    const cached = { leaseId: rec.leaseId };
    // Recorded before creators were tracked: kept by a run that reuses the cached token.
    expect(decideLease(spec, rec, cached, 1000, false, cur).decision).toBe("keep");
    expect(leaseOwnerGone(rec, { ...cur, loggedIn: true })).toMatch(/logged in again/);
    rec.tokenId = cur.id;
    rec.tokenAccessor = cur.accessor;
    expect(decideLease(spec, rec, cached, 1000, false, cur).decision).toBe("keep");
    const other = recordToken(s, KEY, auth("login", "t2"));
    expect(decideLease(spec, rec, cached, 1000, false, other)).toEqual({
      decision: "replace",
      reason: "the token that created it (accessor acc-t1) is gone or going (revoked, expired or replaced by a new login): Vault revokes a lease with its token",
    });
    // Without a current token (older callers) nothing changes.
    expect(decideLease(spec, rec, cached, 1000, false).decision).toBe("keep");
  });
});
