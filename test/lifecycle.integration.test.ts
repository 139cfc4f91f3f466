/**
 * Secrets with a lifetime (PKI sets, leases), change hooks and `rotate`, end to end: the built
 * CLI against the Vault double. The double's clock and the CLI's (VAULT_RENDER_TEST_NOW_OFFSET)
 * are moved together to make time pass.
 */
import { execFile } from "node:child_process";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { readFile, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import type { Tree } from "./helpers.js";
import { PKI_LEASE_RULES, baseLayout, makeTree, recordingClock, snapshot } from "./helpers.js";
import { KILL_GRACE_MS } from "../src/core/support/command.js";

const exec = promisify(execFile);

let trees: Tree[] = [];
afterEach(async () => {
  await Promise.all(trees.map((t) => t.cleanup()));
  trees = [];
});

const POLICY = `
path "secret/data/*" { capabilities = ["read", "create", "update"] }
${PKI_LEASE_RULES}path "auth/approle/role/app/secret-id" { capabilities = ["update"] }
path "auth/approle/role/app/secret-id/lookup" { capabilities = ["update"] }
path "auth/approle/role/app/secret-id-accessor/destroy" { capabilities = ["update"] }
`;

const HOOK_LOG = "hooks.log";
const logHook = () => ({ command: `printf '%s %s\\n' "$VAULT_RENDER_HOOK" "$(echo $VAULT_RENDER_CHANGED_FILES)" >> ${HOOK_LOG}`, shell: true });

async function tree(): Promise<Tree> {
  const t = await makeTree({ policy: POLICY });
  trees.push(t);
  return t;
}

async function hookLines(t: Tree): Promise<string[]> {
  try {
    return (await readFile(path.join(t.dir, HOOK_LOG), "utf8")).trim().split("\n").filter(Boolean);
  } catch {
    return [];
  }
}

/** The CLI's clock offset, to match the double's advanceTime. */
function at(_t: Tree, offsetSec: number) {
  return { env: { VAULT_RENDER_TEST_NOW_OFFSET: String(offsetSec) } };
}

function pkiLayout(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return baseLayout({
    sources: {},
    hooks: { "reload-web": logHook() },
    outputs: [{ format: "pki", dir: "certs/web", mount: "pki_int", role: "web", commonName: "web.home.arpa", altNames: ["www.home.arpa"], ipSans: ["10.0.0.5"], ttl: "72h", renewBefore: "24h", hooks: ["reload-web"], ...extra }],
  });
}

async function setupPki(t: Tree) {
  t.double.mountPki("pki_int");
  t.double.addPkiRole("pki_int", "web", { allowedDomains: ["home.arpa"], allowSubdomains: true, allowIpSans: true, maxTtl: 30 * 86400 });
  await t.writeLayout(pkiLayout());
}

describe("PKI certificate sets", () => {
  it("issues one verified set (openssl accepts it), 0644, hook once; a second sync issues nothing", async () => {
    const t = await tree();
    await setupPki(t);
    const r = await t.run(["sync"]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    const dir = path.join(t.publicDir, "certs/web");
    for (const f of ["cert.pem", "key.pem", "ca.pem", "fullchain.pem"]) expect((await stat(path.join(dir, f))).mode & 0o777).toBe(0o644);
    const cert = new X509Certificate(await readFile(path.join(dir, "cert.pem")));
    expect(cert.checkPrivateKey(createPrivateKey(await readFile(path.join(dir, "key.pem"))))).toBe(true);
    expect(cert.subjectAltName).toMatch(/DNS:www\.home\.arpa/);
    expect(cert.subjectAltName).toMatch(/IP Address:10\.0\.0\.5/);
    const v = await exec("openssl", ["verify", "-CAfile", path.join(dir, "ca.pem"), path.join(dir, "cert.pem")]);
    expect(v.stdout).toMatch(/: OK/);
    const { root } = t.double.pkiCaChain("pki_int");
    await writeFile(path.join(t.dir, "root.pem"), root);
    const v2 = await exec("openssl", ["verify", "-CAfile", path.join(t.dir, "root.pem"), "-untrusted", path.join(dir, "fullchain.pem"), path.join(dir, "fullchain.pem")]);
    expect(v2.stdout).toMatch(/: OK/);
    expect(await hookLines(t)).toEqual(["reload-web certs/web/cert.pem certs/web/key.pem certs/web/ca.pem certs/web/fullchain.pem"]);
    const before = await snapshot(t.publicDir);
    expect((await t.run(["sync"])).code).toBe(0);
    expect(t.double.countRequests({ path: "pki_int/issue/web" })).toBe(1);
    expect(await snapshot(t.publicDir)).toEqual(before);
    expect(await hookLines(t)).toHaveLength(1);
    // A new token (re-login) never re-issues.
    await rm(path.join(t.agentDir, "token"));
    expect((await t.run(["sync"])).code).toBe(0);
    expect(t.double.countRequests({ path: "pki_int/issue/web" })).toBe(1);
  });

  it("re-issues inside renewBefore (hook once), when the request changes, and when the cert on disk is damaged", async () => {
    const t = await tree();
    await setupPki(t);
    await t.run(["sync"]);
    const serial1 = new X509Certificate(await readFile(path.join(t.publicDir, "certs/web/cert.pem"))).serialNumber;
    // 72h certificate, renewBefore 24h: at +47h it is still good, at +49h it is due.
    t.double.advanceTime(47 * 3600);
    expect((await t.run(["sync"], at(t, 47 * 3600))).code).toBe(0);
    expect(t.double.countRequests({ path: "pki_int/issue/web" })).toBe(1);
    t.double.advanceTime(2 * 3600);
    const r = await t.run(["sync", "-v"], at(t, 49 * 3600));
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/issued a certificate for certs\/web: serial [0-9A-F]+ -> [0-9A-F]+, expires .* \(within renewBefore/);
    expect(t.double.countRequests({ path: "pki_int/issue/web" })).toBe(2);
    expect(await hookLines(t)).toHaveLength(2);
    expect(new X509Certificate(await readFile(path.join(t.publicDir, "certs/web/cert.pem"))).serialNumber).not.toBe(serial1);
    // Changed request parameters.
    await t.writeLayout(pkiLayout({ altNames: ["www.home.arpa", "api.home.arpa"] }));
    expect((await t.run(["sync"], at(t, 49 * 3600))).code).toBe(0);
    expect(t.double.countRequests({ path: "pki_int/issue/web" })).toBe(3);
    // Damaged certificate on disk.
    await writeFile(path.join(t.publicDir, "certs/web/cert.pem"), "garbage");
    expect((await t.run(["sync"], at(t, 49 * 3600))).code).toBe(0);
    expect(t.double.countRequests({ path: "pki_int/issue/web" })).toBe(4);
    expect(await hookLines(t)).toHaveLength(4);
  });

  it("refuses a key that does not match the certificate and keeps the last good set", async () => {
    const t = await tree();
    await setupPki(t);
    await t.run(["sync"]);
    const before = await snapshot(t.publicDir);
    t.double.setPkiMismatch("pki_int", true);
    const r = await t.run(["rotate", "certs/web"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the private key returned by pki_int\/issue\/web does not match its certificate/);
    expect(await snapshot(t.publicDir)).toEqual(before);
    expect(await hookLines(t)).toHaveLength(1);
    expect(r.stderr).not.toMatch(/PRIVATE KEY/);
  });

  it("rotate re-issues a valid certificate and runs its hook", async () => {
    const t = await tree();
    await setupPki(t);
    await t.run(["sync"]);
    const dry = await t.run(["rotate", "--dry-run", "certs/web"]);
    expect(dry.stdout).toMatch(/rotate +certs\/web +new certificate from pki_int\/issue\/web/);
    expect(t.double.countRequests({ path: "pki_int/issue/web" })).toBe(1);
    const r = await t.run(["rotate", "certs/web"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/issued a certificate for certs\/web: serial .* \(rotation requested\)/);
    expect(t.double.countRequests({ path: "pki_int/issue/web" })).toBe(2);
    expect(await hookLines(t)).toHaveLength(2);
  });
});

function leaseLayout(): Record<string, unknown> {
  return baseLayout({
    sources: { db: { type: "lease", path: "database/creds/app" } },
    hooks: { "restart-app": logHook() },
    outputs: [{ file: "db.env", format: "env", keys: { DB_USER: "db.username", DB_PASSWORD: "db.password" }, hooks: ["restart-app"] }],
  });
}

describe("leased dynamic secrets", () => {
  it("fetches once, keeps a healthy lease, renews a renewable one, replaces it near max TTL and revokes the old one after the hook", async () => {
    const t = await tree();
    t.double.mountDatabase("database");
    t.double.addDbRole("database", "app", { defaultTtl: 3600, maxTtl: 7200 });
    await t.writeLayout(leaseLayout());
    expect((await t.run(["sync"])).code).toBe(0);
    const first = await readFile(path.join(t.publicDir, "db.env"), "utf8");
    expect(t.double.countRequests({ path: "database/creds/app" })).toBe(1);
    const pw = /DB_PASSWORD='([^']+)'/.exec(first)?.[1] as string;
    expect(pw.length).toBeGreaterThan(8);
    expect(await readFile(path.join(t.agentDir, "state.json"), "utf8")).not.toContain(pw);
    // Healthy: no Vault call for it at all.
    expect((await t.run(["sync"], at(t, 600))).code).toBe(0);
    t.double.advanceTime(2000);
    expect((await t.run(["sync"], at(t, 2000))).code).toBe(0);
    expect(t.double.countRequests({ path: "database/creds/app" })).toBe(1);
    expect(t.double.countRequests({ path: "sys/leases/renew" })).toBe(1);
    expect(await readFile(path.join(t.publicDir, "db.env"), "utf8")).toBe(first);
    expect(await hookLines(t)).toEqual(["restart-app db.env"]);
    const oldLease = (JSON.parse(await readFile(path.join(t.agentDir, "state.json"), "utf8")) as { leases: { db: { leaseId: string } } }).leases.db.leaseId;
    // Near its max TTL (7200 s): renewal cannot extend it past the threshold, so it is replaced.
    t.double.advanceTime(3500);
    const r = await t.run(["sync", "-v"], at(t, 5500));
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/lease db: replaced/);
    expect(r.stderr).toMatch(/revoked the replaced lease of db/);
    expect(t.double.countRequests({ path: "database/creds/app" })).toBe(2);
    expect(await readFile(path.join(t.publicDir, "db.env"), "utf8")).not.toBe(first);
    expect(await hookLines(t)).toEqual(["restart-app db.env", "restart-app db.env"]);
    expect(t.double.leaseInfo(oldLease)?.revoked).toBe(true);
  });

  it("replaces a non-renewable lease near expiry without trying to renew it", async () => {
    const t = await tree();
    t.double.mountDatabase("database");
    t.double.addDbRole("database", "app", { defaultTtl: 3600, maxTtl: 3600, renewable: false });
    await t.writeLayout(leaseLayout());
    await t.run(["sync"]);
    const oldLease = (JSON.parse(await readFile(path.join(t.agentDir, "state.json"), "utf8")) as { leases: { db: { leaseId: string } } }).leases.db.leaseId;
    t.double.advanceTime(2000);
    expect((await t.run(["sync"], at(t, 2000))).code).toBe(0);
    expect(t.double.countRequests({ path: "sys/leases/renew" })).toBe(0);
    expect(t.double.countRequests({ path: "database/creds/app" })).toBe(2);
    expect(t.double.leaseInfo(oldLease)?.revoked).toBe(true);
    expect(await hookLines(t)).toHaveLength(2);
  });

  it("rotate fetches new credentials and revokes the old lease", async () => {
    const t = await tree();
    t.double.mountDatabase("database");
    t.double.addDbRole("database", "app", { defaultTtl: 3600, maxTtl: 7200 });
    await t.writeLayout(leaseLayout());
    await t.run(["sync"]);
    const oldLease = (JSON.parse(await readFile(path.join(t.agentDir, "state.json"), "utf8")) as { leases: { db: { leaseId: string } } }).leases.db.leaseId;
    const r = await t.run(["rotate", "db.env"]);
    expect(r.code).toBe(0);
    expect(t.double.countRequests({ path: "database/creds/app" })).toBe(2);
    expect(t.double.leaseInfo(oldLease)?.revoked).toBe(true);
    expect(await hookLines(t)).toHaveLength(2);
  });
});

describe("hooks", () => {
  function kvHookLayout(hook: Record<string, unknown>): Record<string, unknown> {
    return baseLayout({
      hooks: { h: hook },
      outputs: [{ file: "app.env", format: "env", keys: { DB_PASSWORD: "app.password" }, hooks: ["h"] }, { file: "other", format: "raw", value: "app.password", hooks: ["h"] }],
    });
  }

  it("runs once per run for all its changed outputs, argv without a shell, with the changed files in its environment", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "CANARY-hook-secret-42" });
    await writeFile(path.join(t.dir, "hook.js"), `require("fs").appendFileSync("${HOOK_LOG}", process.env.VAULT_RENDER_CHANGED_FILES.split("\\n").join(",") + " " + process.argv.slice(2).join("|") + "\\n"); console.log("token? " + (process.env.VAULT_TOKEN ?? "none")); console.log(require("fs").readFileSync("public/app.env", "utf8"));`);
    await t.writeLayout(kvHookLayout({ command: [process.execPath, "hook.js", "$HOME", "a b"] }));
    const r = await t.run(["sync", "-v"]);
    expect(r.code).toBe(0);
    expect(await hookLines(t)).toEqual(["app.env,other $HOME|a b"]);
    // Its output is logged, redacted.
    expect(r.stderr).toMatch(/hook h: DB_PASSWORD='\[REDACTED\]'/);
    expect(r.stderr).not.toContain("CANARY-hook-secret-42");
  });

  it("a failed hook exits 1, stays pending, and runs on the next sync without re-writing anything", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "p" });
    await t.writeLayout(kvHookLayout({ command: `test -f ok || exit 7; echo ran >> ${HOOK_LOG}`, shell: true }));
    const r = await t.run(["sync"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/hook h failed with exit code 7; it stays pending/);
    const before = await snapshot(t.publicDir);
    await writeFile(path.join(t.dir, "ok"), "");
    const r2 = await t.run(["sync"]);
    expect(r2).toMatchObject({ code: 0, stderr: "" });
    expect(await hookLines(t)).toEqual(["ran"]);
    expect(await snapshot(t.publicDir)).toEqual(before);
    expect((await t.run(["sync"])).code).toBe(0);
    expect(await hookLines(t)).toEqual(["ran"]);
  });

  it("a hook that runs past its timeout is stopped (SIGTERM, then SIGKILL)", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "p" });
    // A hook that would outlive the test's timeout: the run ends only because the hook was stopped.
    await t.writeLayout(kvHookLayout({ command: ["sh", "-c", "trap '' TERM; sleep 300"], timeout: "300ms" }));
    // The kill grace (5 s) taken as 50 ms: the same steps, without waiting for them.
    const clock = recordingClock((ms) => (ms === KILL_GRACE_MS ? 50 : ms));
    const r = await t.run(["sync"], { clock });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/hook h timed out after 300ms and was stopped \(SIGKILL\)/);
    expect(clock.sleeps).toEqual(expect.arrayContaining([300, KILL_GRACE_MS]));
  });

  it("a hook interrupted by the death of vault-render runs on the next sync; --no-hooks leaves it pending; --run-hooks forces it", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "p" });
    await t.writeLayout(kvHookLayout({ command: `if [ ! -f once ]; then touch once; kill -9 $PPID; sleep 5; fi; echo ran >> ${HOOK_LOG}`, shell: true }));
    // The hook kills its parent: a child process.
    const r = await t.run(["sync"], { mode: "child" });
    expect(r.signal).toBe("SIGKILL");
    expect(await hookLines(t)).toEqual([]);
    const r2 = await t.run(["sync", "--no-hooks"]);
    expect(r2.code).toBe(0);
    expect(await hookLines(t)).toEqual([]);
    expect((await t.run(["sync"])).code).toBe(0);
    expect(await hookLines(t)).toEqual(["ran"]);
    expect((await t.run(["sync", "--run-hooks"])).code).toBe(0);
    expect(await hookLines(t)).toEqual(["ran", "ran"]);
  });
});

describe("rotate", () => {
  it("writes a new generated KV v2 value with check-and-set, renders it and runs the hook", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "old-password", user: "app" });
    await t.writeLayout(
      baseLayout({
        sources: { app: { type: "kv", mount: "secret", path: "app", generate: { key: "password", length: 40, alphabet: "hex" } } },
        hooks: { h: logHook() },
        outputs: [{ file: "app.env", format: "env", keys: { DB_PASSWORD: "app.password", DB_USER: "app.user" }, hooks: ["h"] }],
      }),
    );
    await t.run(["sync"]);
    const dry = await t.run(["rotate", "-n", "app.env"]);
    expect(dry.stdout).toMatch(/new random value for secret\/app key "password" \(check-and-set\)/);
    expect(t.double.kvCurrent("secret", "app")?.version).toBe(1);
    const r = await t.run(["rotate", "app.env"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/rotated secret\/app key "password": version 1 -> 2/);
    const cur = t.double.kvCurrent("secret", "app");
    expect(cur?.version).toBe(2);
    expect(cur?.data?.user).toBe("app");
    expect(String(cur?.data?.password)).toMatch(/^[0-9a-f]{40}$/);
    expect(r.stderr + r.stdout).not.toContain(String(cur?.data?.password));
    expect(await readFile(path.join(t.publicDir, "app.env"), "utf8")).toBe(`DB_PASSWORD='${String(cur?.data?.password)}'\nDB_USER='app'\n`);
    expect(await hookLines(t)).toHaveLength(2);
  });

  it("never rotates a KV secret without a generator", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "p" });
    await t.run(["sync"]);
    const r = await t.run(["rotate", "app.env"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/nothing to rotate for "app\.env"/);
    expect(t.double.kvCurrent("secret", "app")?.version).toBe(1);
  });

  it("--secret-id replaces the secret_id after proving it, and survives a crash before the file is written", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "p" });
    const l = baseLayout();
    (l.auth as { approle: Record<string, unknown> }).approle.roleName = "app";
    await t.writeLayout(l);
    await t.run(["sync"]);
    const oldSecret = (await readFile(path.join(t.agentDir, "approle/secret_id"), "utf8")).trim();
    // Crash between generating the new secret_id and writing it: the old one still logs in.
    const crash = await t.run(["rotate", "--secret-id"], { env: { VAULT_RENDER_TEST_FAULT: "kill:approle/secret_id" } });
    expect(crash.signal).toBe("SIGKILL");
    expect((await readFile(path.join(t.agentDir, "approle/secret_id"), "utf8")).trim()).toBe(oldSecret);
    await rm(path.join(t.agentDir, "token"));
    t.double.clearRequests();
    expect((await t.run(["sync"])).code).toBe(0);
    expect(t.double.countRequests({ path: /login$/ })).toBe(1);
    // A clean rotation.
    const r = await t.run(["rotate", "--secret-id"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/rotated the AppRole secret_id/);
    expect(r.stderr).toMatch(/secret-id-accessor\/destroy secret_id_accessor=/);
    const newSecret = (await readFile(path.join(t.agentDir, "approle/secret_id"), "utf8")).trim();
    expect(newSecret).not.toBe(oldSecret);
    expect(r.stderr).not.toContain(newSecret);
    expect(r.stderr).not.toContain(oldSecret);
    await rm(path.join(t.agentDir, "token"));
    expect((await t.run(["sync"])).code).toBe(0);
  });

  it("--secret-id with revokeOldSecretId destroys the old secret_id", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "p" });
    const l = baseLayout();
    Object.assign((l.auth as { approle: Record<string, unknown> }).approle, { roleName: "app", revokeOldSecretId: true });
    await t.writeLayout(l);
    await t.run(["sync"]);
    const oldSecret = (await readFile(path.join(t.agentDir, "approle/secret_id"), "utf8")).trim();
    const r = await t.run(["rotate", "--secret-id"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/destroyed the old secret_id/);
    const login = await fetch(`${t.double.url}/v1/auth/approle/login`, { method: "POST", body: JSON.stringify({ role_id: t.roleId, secret_id: oldSecret }) });
    expect(login.status).toBe(400);
  });
});
