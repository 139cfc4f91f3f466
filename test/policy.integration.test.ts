/**
 * `vault-render policy`, end to end: the policy the built CLI prints for a layout with KV v1, KV v2
 * (with and without a generator, one without a declared kvVersion), a generic read, a lease, a PKI
 * set and rotate --secret-id is loaded into the Vault double as the AppRole's only policy — the
 * double's `default` policy is emptied, as for a role with token_no_default_policy=true, so every
 * rule has to stand on its own. With it, sync, rotate and rotate --secret-id pass; with any one
 * capability removed, the run that needs it fails (or degrades as the core handles that denial)
 * and names the path.
 */
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { RunResult, Tree } from "./helpers.js";
import { makeTree } from "./helpers.js";

const LAYOUT = {
  version: 1,
  auth: { approle: { roleIdFile: "approle/role_id", secretIdFile: "approle/secret_id", roleName: "app", revokeOldSecretId: true } },
  sources: {
    smtp: { type: "kv", mount: "kv", path: "mail/smtp", kvVersion: 1 },
    db: { type: "kv", mount: "secret", path: "db", kvVersion: 2, generate: { key: "password", length: 24 } },
    // No kvVersion: detected through the preflight, which needs no rule of its own.
    app: { type: "kv", mount: "secret", path: "app" },
    misc: { type: "read", path: "misc/app" },
    pg: { type: "lease", path: "database/creds/app" },
  },
  outputs: [
    { file: "smtp/password", format: "raw", value: "smtp.password" },
    { file: "db/password", format: "raw", value: "db.password" },
    { file: "app.env", format: "env", keys: { APP_TOKEN: "app.token" } },
    { file: "misc.json", format: "json", keys: { misc: "misc.value" } },
    { file: "pg.env", format: "template", inline: "PGUSER={{ pg.username }}\nPGPASSWORD={{ pg.password }}\n" },
    { format: "pki", dir: "certs/web", mount: "pki_int", role: "web", commonName: "web.home.arpa" },
  ],
};

const EXPECTED: Record<string, string[]> = {
  "auth/token/lookup-self": ["read"],
  "auth/token/renew-self": ["update"],
  "database/creds/app": ["read"],
  "kv/mail/smtp": ["read"],
  "misc/app": ["read"],
  "secret/data/app": ["read"],
  "secret/data/db": ["read", "update"],
  "pki_int/issue/web": ["update"],
  "sys/leases/renew": ["update"],
  "sys/leases/revoke": ["update"],
  "auth/approle/role/app/secret-id": ["update"],
  "auth/approle/role/app/secret-id-accessor/destroy": ["update"],
  "auth/approle/role/app/secret-id/lookup": ["update"],
};

let hcl = "";
let json: Record<string, string[]> = {};
let trees: Tree[] = [];

beforeAll(async () => {
  const t = await makeTree({ layout: LAYOUT });
  try {
    const h = await t.run(["policy"]);
    expect(h).toMatchObject({ code: 0, stderr: "" });
    hcl = h.stdout;
    const j = await t.run(["policy", "--json"]);
    expect(j.code).toBe(0);
    json = JSON.parse(j.stdout) as Record<string, string[]>;
  } finally {
    await t.cleanup();
  }
});

afterEach(async () => {
  await Promise.all(trees.map((t) => t.cleanup()));
  trees = [];
});

function toHcl(rules: Record<string, string[]>): string {
  return Object.entries(rules)
    .filter(([, caps]) => caps.length > 0)
    .map(([p, caps]) => `path ${JSON.stringify(p)} {\n  capabilities = [${caps.map((c) => JSON.stringify(c)).join(", ")}]\n}\n`)
    .join("\n");
}

function without(rule: string): string {
  const [p, cap] = rule.split(" ") as [string, string];
  const rules = Object.fromEntries(Object.entries(json).map(([k, caps]) => [k, k === p ? caps.filter((c) => c !== cap) : caps]));
  return toHcl(rules);
}

async function tree(policy: string, own?: Tree[]): Promise<Tree> {
  const t = await makeTree({ layout: LAYOUT, policy });
  (own ?? trees).push(t);
  const d = t.double;
  // As for a role with token_no_default_policy=true: nothing comes from Vault's default policy.
  d.addPolicy("default", "");
  d.kvPut("kv", "mail/smtp", { password: "smtp-password-1" });
  d.kvPut("secret", "db", { password: "db-password-1", user: "app" });
  d.kvPut("secret", "app", { token: "app-token-1" });
  d.setGeneric("misc/app", { value: "misc-value-1" });
  d.mountDatabase("database");
  d.addDbRole("database", "app", { defaultTtl: 3600, maxTtl: 86400 });
  d.mountPki("pki_int");
  // EC keys: what is tested is the policy, and the double's RSA key generation (0.3-1.5 s a key
  // on an idle machine, far more under load, for every issue) is what made these cases slow.
  d.addPkiRole("pki_int", "web", { allowedDomains: ["home.arpa"], allowSubdomains: true, maxTtl: 30 * 86400, keyType: "ec" });
  return t;
}

/** Move the double's clock and the CLI's together. */
function later(t: Tree, sec: number) {
  t.double.advanceTime(sec);
  return { env: { VAULT_RENDER_TEST_NOW_OFFSET: String(sec) } };
}

const logins = (t: Tree) => t.double.countRequests({ path: "auth/approle/login" });
const leaseId = async (t: Tree) => (JSON.parse(await readFile(path.join(t.agentDir, "state.json"), "utf8")) as { leases: Record<string, { leaseId: string }> }).leases.pg?.leaseId as string;
/** rotate logs what it did at info level; "clean" means no warning or error line. */
const clean = (r: RunResult) => {
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).not.toMatch(/permission denied|could not|[1-9]\d* failed/i);
};
const denied = (r: RunResult, cap: string, p: string) => r.stderr.includes(`permission denied (the policy needs "${cap}" on "${p}")`);

interface Scenario {
  /** Runs the command that needs the rule; returns what the assertions look at. */
  run: (t: Tree) => Promise<RunResult & { extra?: unknown }>;
  /** With the whole policy. */
  ok: (r: RunResult & { extra?: unknown }) => void;
  /** With this one capability removed. */
  broken: (r: RunResult & { extra?: unknown }) => void;
}

/** A plain sync, where one source or output fails alone. */
function syncReads(cap: string, p: string): Scenario {
  return {
    run: (t) => t.run(["sync"]),
    ok: (r) => expect(r).toMatchObject({ code: 0, stderr: "" }),
    broken: (r) => {
      expect(r.code, r.stderr).toBe(1);
      expect(denied(r, cap, p)).toBe(true);
    },
  };
}

const SCENARIOS: Record<string, Scenario> = {
  "auth/token/lookup-self read": {
    // Without it the cached token cannot be checked: every run logs in again (a new token per run).
    run: async (t) => {
      await t.run(["sync"]);
      const r = await t.run(["sync", "-v"]);
      return { ...r, extra: logins(t) };
    },
    ok: (r) => {
      expect(r.code, r.stderr).toBe(0);
      expect(r.extra).toBe(1);
    },
    broken: (r) => {
      expect(r.code, r.stderr).toBe(0);
      expect(r.extra).toBe(2);
      expect(r.stderr).toMatch(/warn: .*the policy lacks "read" on auth\/token\/lookup-self .*every run logs in again/);
    },
  },
  "auth/token/renew-self update": {
    // Without it a token past half its TTL cannot be renewed: the run logs in again.
    run: async (t) => {
      await t.run(["sync"]);
      const r = await t.run(["sync", "-v"], later(t, 2000));
      return { ...r, extra: logins(t) };
    },
    ok: (r) => {
      expect(r.stderr).toMatch(/renewed the cached token/);
      expect(r.extra).toBe(1);
    },
    broken: (r) => {
      expect(r.stderr).toMatch(/warn: write auth\/token\/renew-self: permission denied .*; logging in again instead of renewing/);
      expect(r.extra).toBe(2);
    },
  },
  "kv/mail/smtp read": syncReads("read", "kv/mail/smtp"),
  "secret/data/db read": syncReads("read", "secret/data/db"),
  "secret/data/app read": syncReads("read", "secret/data/app"),
  "misc/app read": syncReads("read", "misc/app"),
  "database/creds/app read": syncReads("read", "database/creds/app"),
  "pki_int/issue/web update": syncReads("create/update", "pki_int/issue/web"),
  "secret/data/db update": {
    run: async (t) => {
      await t.run(["sync"]);
      return t.run(["rotate", "db/password"]);
    },
    ok: (r) => clean(r),
    broken: (r) => {
      expect(r.code, r.stderr).toBe(1);
      expect(denied(r, "create/update", "secret/data/db")).toBe(true);
    },
  },
  "sys/leases/renew update": {
    // Without it a renewable lease past its threshold is replaced (new credentials) instead of renewed.
    run: async (t) => {
      await t.run(["sync"]);
      return t.run(["sync", "-v"], later(t, 2000));
    },
    ok: (r) => {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/lease pg: renewed/);
    },
    broken: (r) => {
      expect(r.stderr).toMatch(/lease pg: replaced \(renewal refused \(write sys\/leases\/renew: permission denied/);
    },
  },
  "sys/leases/revoke update": {
    // Without it a replaced lease stays alive (retried on every run).
    run: async (t) => {
      await t.run(["sync"]);
      const old = await leaseId(t);
      const r = await t.run(["rotate", "pg.env"]);
      return { ...r, extra: t.double.leaseInfo(old)?.revoked };
    },
    ok: (r) => {
      clean(r);
      expect(r.extra).toBe(true);
    },
    broken: (r) => {
      expect(denied(r, "create/update", "sys/leases/revoke")).toBe(true);
      expect(r.stderr).toMatch(/could not revoke the replaced lease of pg/);
      expect(r.extra).toBe(false);
    },
  },
  "auth/approle/role/app/secret-id update": {
    run: (t) => t.run(["rotate", "--secret-id"]),
    ok: (r) => expect(r.code).toBe(0),
    broken: (r) => {
      expect(r.code, r.stderr).toBe(1);
      expect(denied(r, "create/update", "auth/approle/role/app/secret-id")).toBe(true);
    },
  },
  "auth/approle/role/app/secret-id/lookup update": {
    // Without it the old secret_id's accessor cannot be found: rotation succeeds, but the old
    // secret_id is NOT destroyed despite revokeOldSecretId — and a warning says so.
    run: async (t) => {
      const r = await t.run(["rotate", "--secret-id"]);
      return { ...r, extra: t.double.secretIdCount("app") };
    },
    ok: (r) => {
      expect(r.code, r.stderr).toBe(0);
      expect(r.extra).toBe(1);
    },
    broken: (r) => {
      expect(r.extra).toBe(2);
      expect(r.stderr).toMatch(/could not look up the old secret_id's accessor .*it was NOT destroyed/);
    },
  },
  "auth/approle/role/app/secret-id-accessor/destroy update": {
    run: async (t) => {
      const r = await t.run(["rotate", "--secret-id"]);
      return { ...r, extra: t.double.secretIdCount("app") };
    },
    ok: (r) => {
      expect(r.code, r.stderr).toBe(0);
      expect(r.extra).toBe(1);
    },
    broken: (r) => {
      expect(r.code, r.stderr).toBe(1);
      expect(denied(r, "create/update", "auth/approle/role/app/secret-id-accessor/destroy")).toBe(true);
      expect(r.extra).toBe(2);
    },
  },
};

describe("vault-render policy (generated for the layout, loaded into the double)", () => {
  it("prints exact paths with the least capabilities, as HCL and as JSON", () => {
    expect(json).toEqual(EXPECTED);
    // Token rules, then secrets by path, PKI, leases, secret-id.
    expect(Object.keys(json)).toEqual(Object.keys(EXPECTED));
    expect(hcl).toMatch(/^# Vault policy for the AppRole of auth\/approle used by vault-render with vault-layout\.json\./);
    expect(hcl).toContain('# rotate: db (new "password", check-and-set write to the existing secret)\npath "secret/data/db" {\n  capabilities = ["read", "update"]\n}\n');
    expect(hcl).not.toMatch(/metadata|internal\/ui|wrapping|login"|\*/);
    const blocks = hcl.match(/^path "/gm) ?? [];
    expect(blocks).toHaveLength(Object.keys(EXPECTED).length);
  });

  it("needs no Vault: a layout alone gives the policy; an invalid layout exits 2", async () => {
    const t = await makeTree({ layout: LAYOUT });
    trees.push(t);
    const r = await t.run(["policy"], { env: { VAULT_ADDR: "http://127.0.0.1:1" } });
    expect(r).toMatchObject({ code: 0, stderr: "", stdout: hcl });
    expect(t.double.countRequests()).toBe(0);
    await writeFile(t.layoutFile, JSON.stringify({ ...LAYOUT, sources: { x: { type: "kv" } } }));
    const bad = await t.run(["policy"]);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe("");
    expect(bad.stderr).toMatch(/\$\.sources\.x\.mount/);
  });

  it("covers every rule it prints with a scenario below", () => {
    const rules = Object.entries(json).flatMap(([p, caps]) => caps.map((c) => `${p} ${c}`));
    expect(rules.sort()).toEqual(Object.keys(SCENARIOS).sort());
  });

  it("with the generated policy: sync, a second sync (cached token), rotate and rotate --secret-id pass", async () => {
    const t = await tree(hcl);
    expect(await t.run(["sync"])).toMatchObject({ code: 0, stderr: "" });
    expect(await readFile(path.join(t.publicDir, "app.env"), "utf8")).toBe("APP_TOKEN='app-token-1'\n");
    expect(await t.run(["sync", "-v"])).toMatchObject({ code: 0 });
    expect(logins(t)).toBe(1);
    clean(await t.run(["rotate", "db/password", "pg.env", "certs/web"]));
    expect(await readFile(path.join(t.publicDir, "db/password"), "utf8")).not.toBe("db-password-1");
    clean(await t.run(["rotate", "--secret-id"]));
    expect(t.double.secretIdCount("app")).toBe(1);
    expect(await t.run(["sync"])).toMatchObject({ code: 0, stderr: "" });
  });

  describe.concurrent.each(Object.keys(SCENARIOS))("%s", (rule) => {
    const s = SCENARIOS[rule] as Scenario;
    it("passes with the whole policy and fails without this rule", async () => {
      // Concurrent tests clean up their own trees (afterEach would see the others').
      const own: Tree[] = [];
      try {
        s.ok(await s.run(await tree(hcl, own)));
        s.broken(await s.run(await tree(without(rule), own)));
      } finally {
        await Promise.all(own.map((t) => t.cleanup()));
      }
    });
  });
});
