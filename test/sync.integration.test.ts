/**
 * `vault-render sync` end to end: the built CLI as a child process, against the Vault double
 * over real HTTP, in temp directories.
 */
import { spawn } from "node:child_process";
import { chmod, lstat, mkdir, readFile, readdir, stat, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Tree } from "./helpers.js";
import { baseLayout, recordingClock, snapshot, trackedTrees } from "./helpers.js";

const CANARY = "CANARY-s3cr3t-7f9d2c-DO-NOT-LOG";

const tree = trackedTrees(afterEach);

function fullLayout(): Record<string, unknown> {
  return baseLayout({
    sources: {
      app: { type: "kv", mount: "secret", path: "app" },
      pinned: { type: "kv", mount: "secret", path: "app", version: 1 },
      legacy: { type: "kv", mount: "kv", path: "smtp" },
      cert: { type: "kv", mount: "secret", path: "tls", kvVersion: 2 },
    },
    outputs: [
      { file: "app.env", format: "env", keys: { DB_PASSWORD: "app.password", DB_USER: "app.user", SMTP: "legacy.password" } },
      { file: "all.env", format: "env", from: [{ source: "app", prefix: "APP_" }] },
      { file: "postgres/password", format: "raw", value: "app.password" },
      { file: "old/password", format: "raw", value: "pinned.password" },
      { file: "conf/app.json", format: "json", keys: { user: "app.user", password: "app.password", port: "app.port" } },
      { file: "certs/blob.bin", format: "raw", value: "cert.blob", decode: "base64" },
      { file: "pgpass", format: "template", inline: "db:5432:*:{{ app.user }}:{{ app.password }}\n" },
    ],
  });
}

async function seedFull(t: Tree) {
  t.double.kvPut("secret", "app", { password: "first-pass", user: "app", port: 5432 });
  t.double.kvPut("secret", "app", { password: CANARY, user: "app", port: 5432 });
  t.double.kvPut("kv", "smtp", { password: "smtp-pass" });
  t.double.kvPut("secret", "tls", { blob: Buffer.from([0, 1, 2, 255]).toString("base64") });
  await t.writeLayout(fullLayout());
}

describe("sync", () => {
  it("renders every format exactly, with 0644 files and 0755 dirs, silently", async () => {
    const t = await tree();
    await seedFull(t);
    const r = await t.run(["sync"]);
    expect(r).toMatchObject({ code: 0, stdout: "", stderr: "" });
    expect(await readFile(path.join(t.publicDir, "app.env"), "utf8")).toBe(`DB_PASSWORD='${CANARY}'\nDB_USER='app'\nSMTP='smtp-pass'\n`);
    expect(await readFile(path.join(t.publicDir, "all.env"), "utf8")).toBe(`APP_password='${CANARY}'\nAPP_port='5432'\nAPP_user='app'\n`);
    expect(await readFile(path.join(t.publicDir, "postgres/password"), "utf8")).toBe(CANARY);
    expect(await readFile(path.join(t.publicDir, "old/password"), "utf8")).toBe("first-pass");
    expect(JSON.parse(await readFile(path.join(t.publicDir, "conf/app.json"), "utf8"))).toEqual({ user: "app", password: CANARY, port: 5432 });
    expect([...(await readFile(path.join(t.publicDir, "certs/blob.bin")))]).toEqual([0, 1, 2, 255]);
    expect(await readFile(path.join(t.publicDir, "pgpass"), "utf8")).toBe(`db:5432:*:app:${CANARY}\n`);
    const snap = await snapshot(t.publicDir);
    for (const [name, s] of snap) expect([name, s.mode]).toEqual([name, name.endsWith("/") ? 0o755 : 0o644]);
    expect((await stat(t.publicDir)).mode & 0o777).toBe(0o755);
    // agent-only holds the token and state, private.
    for (const f of ["token", "state.json", "state.key"]) expect((await stat(path.join(t.agentDir, f))).mode & 0o777).toBe(0o600);
    expect((await stat(t.agentDir)).mode & 0o777).toBe(0o700);
    const state = await readFile(path.join(t.agentDir, "state.json"), "utf8");
    expect(state).not.toContain(CANARY);
    expect(state).not.toContain("first-pass");
  });

  it("a second sync writes nothing and reuses the cached token (no second login)", async () => {
    const t = await tree();
    await seedFull(t);
    expect((await t.run(["sync"])).code).toBe(0);
    const before = await snapshot(t.publicDir);
    t.double.clearRequests();
    const r = await t.run(["sync", "-v"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/0 created, 0 updated, 0 deleted, 7 unchanged, 0 failed/);
    expect(await snapshot(t.publicDir)).toEqual(before);
    expect(t.double.countRequests({ path: /login$/ })).toBe(0);
    expect(t.double.countRequests({ path: "auth/token/lookup-self" })).toBe(1);
    // One read per unique source, no mount preflight (cached in state): 4 sources + 1 token call.
    expect(t.double.requests.length).toBe(5);
  });

  it("updates only what changed, atomically replacing the file", async () => {
    const t = await tree();
    await seedFull(t);
    await t.run(["sync"]);
    const before = await snapshot(t.publicDir);
    t.double.kvPut("kv", "smtp", { password: "new-smtp" });
    const r = await t.run(["sync", "-v"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/update +app\.env +keys: ~SMTP +\d+ -> \d+ bytes/);
    const after = await snapshot(t.publicDir);
    for (const [name, s] of after) {
      if (name === "app.env") {
        expect(s.ino).not.toBe(before.get(name)?.ino);
        expect(s.content).toContain("SMTP='new-smtp'");
      } else {
        expect(s).toEqual(before.get(name));
      }
    }
  });

  it.each(["000", "022", "077"])("modes are 0644/0755 under umask %s", async (umask) => {
    const t = await tree();
    await seedFull(t);
    const r = await t.run(["sync"], { umask });
    expect(r.code).toBe(0);
    for (const [name, s] of await snapshot(t.publicDir)) expect([name, s.mode]).toEqual([name, name.endsWith("/") ? 0o755 : 0o644]);
  });

  it("restores the mode of a chmod'ed file without rewriting unchanged content", async () => {
    const t = await tree();
    await seedFull(t);
    await t.run(["sync"]);
    await chmod(path.join(t.publicDir, "app.env"), 0o600);
    expect((await t.run(["sync"])).code).toBe(0);
    expect((await stat(path.join(t.publicDir, "app.env"))).mode & 0o777).toBe(0o644);
  });

  it("with Vault sealed: exit 3, one clear line, nothing changed", async () => {
    const t = await tree();
    await seedFull(t);
    await t.run(["sync"]);
    t.double.kvPut("secret", "app", { password: "changed", user: "app", port: 1 });
    const before = await snapshot(t.publicDir);
    t.double.seal();
    const r = await t.run(["sync"]);
    expect(r.code).toBe(3);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/Vault is sealed/);
    expect(await snapshot(t.publicDir)).toEqual(before);
  });

  it("with Vault unreachable: exit 3, nothing changed", async () => {
    const t = await tree();
    await seedFull(t);
    await t.run(["sync"]);
    const before = await snapshot(t.publicDir);
    const r = await t.run(["sync"], { env: { VAULT_ADDR: "http://127.0.0.1:9" } });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/cannot connect to http:\/\/127\.0\.0\.1:9 \(ECONNREFUSED\)/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(await snapshot(t.publicDir)).toEqual(before);
  });

  it("partial failure: a missing key fails that output only, keeps its old file, exits 1", async () => {
    const t = await tree();
    await seedFull(t);
    await t.run(["sync"]);
    const oldEnv = await readFile(path.join(t.publicDir, "app.env"), "utf8");
    t.double.kvPut("kv", "smtp", { other: "x" });
    t.double.kvPut("secret", "app", { password: "rotated-pass", user: "app", port: 5432 });
    const r = await t.run(["sync"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/app\.env: key "password" not found in source "legacy"/);
    expect(r.stderr).not.toContain("rotated-pass");
    expect(await readFile(path.join(t.publicDir, "app.env"), "utf8")).toBe(oldEnv);
    expect(await readFile(path.join(t.publicDir, "postgres/password"), "utf8")).toBe("rotated-pass");
  });

  it("a policy denial names the path and capability, is not retried, and fails only its outputs", async () => {
    const t = await tree({ policy: `path "secret/data/app" { capabilities = ["read"] }\npath "sys/internal/ui/mounts/*" { capabilities = ["read"] }` });
    t.double.kvPut("secret", "app", { password: "p" });
    t.double.kvPut("secret", "other", { password: "q" });
    await t.writeLayout(
      baseLayout({
        sources: { app: { type: "kv", mount: "secret", path: "app", kvVersion: 2 }, other: { type: "kv", mount: "secret", path: "other", kvVersion: 2 } },
        outputs: [
          { file: "a", format: "raw", value: "app.password" },
          { file: "b", format: "raw", value: "other.password" },
        ],
      }),
    );
    const r = await t.run(["sync"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/read secret\/data\/other: permission denied \(the policy needs "read" on "secret\/data\/other"\)/);
    expect(r.stderr).toContain('(hint: check the path as well as the policy: mount "secret", path "other" (without "data/"), KV v2, so read at secret/data/other; not retried)');
    expect(t.double.countRequests({ path: "secret/data/other" })).toBe(1);
    expect(await readFile(path.join(t.publicDir, "a"), "utf8")).toBe("p");
  });

  it("a soft-deleted KV v2 version is reported as deleted, not as empty", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "p" });
    t.double.kvSoftDelete("secret", "app");
    const r = await t.run(["sync"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/secret\/data\/app: version 1 is deleted/);
  });

  it("prunes files removed from the layout, but only files it wrote", async () => {
    const t = await tree();
    await seedFull(t);
    await t.run(["sync"]);
    await writeFile(path.join(t.publicDir, "operator-notes.txt"), "mine");
    const l = fullLayout();
    l.outputs = (l.outputs as Array<{ file: string }>).filter((o) => o.file !== "pgpass" && o.file !== "conf/app.json");
    await t.writeLayout(l);
    const dry = await t.run(["sync", "--dry-run"]);
    expect(dry.stdout).toMatch(/delete\s+conf\/app\.json/);
    expect(dry.stdout).toMatch(/delete\s+pgpass/);
    const r = await t.run(["sync", "-v"]);
    expect(r.code).toBe(0);
    const files = await readdir(t.publicDir);
    expect(files).not.toContain("pgpass");
    expect(files).toContain("operator-notes.txt");
    await expect(lstat(path.join(t.publicDir, "conf/app.json"))).rejects.toThrow(/ENOENT/);
  });

  it("refuses a symlink planted at a target and a symlinked directory", async () => {
    const t = await tree();
    await seedFull(t);
    await mkdir(t.publicDir, { recursive: true });
    const outside = path.join(t.dir, "outside");
    await mkdir(outside);
    await writeFile(path.join(outside, "victim"), "do not touch");
    await symlink(path.join(outside, "victim"), path.join(t.publicDir, "pgpass"));
    await symlink(outside, path.join(t.publicDir, "postgres"));
    const r = await t.run(["sync"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refusing to replace the symlink at .*pgpass/);
    expect(r.stderr).toMatch(/refusing to write through the symlinked directory .*postgres/);
    expect(await readFile(path.join(outside, "victim"), "utf8")).toBe("do not touch");
    expect(await readdir(outside)).toEqual(["victim"]);
    expect(await readFile(path.join(t.publicDir, "app.env"), "utf8")).toContain("DB_PASSWORD=");
  });

  it("rejects path escapes in the layout with exit 2 and the JSON path", async () => {
    const t = await tree();
    await t.writeLayout(baseLayout({ outputs: [{ file: "../escape", format: "raw", value: "app.password" }, { file: "/etc/x", format: "raw", value: "app.password" }] }));
    const r = await t.run(["sync"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/\$\.outputs\[0\]\.file: must not contain "\." or "\.\." segments/);
    expect(r.stderr).toMatch(/\$\.outputs\[1\]\.file: must be relative/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    await expect(stat(t.publicDir)).rejects.toThrow(/ENOENT/);
  });

  it("unwraps a response-wrapped secret_id (checking its creation path) and keeps working", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "p" });
    const wrapped = t.double.generateSecretId("app", { wrapTtl: 300 });
    if (!("wrappingToken" in wrapped)) throw new Error("expected a wrapping token");
    await writeFile(path.join(t.agentDir, "approle/secret_id"), wrapped.wrappingToken + "\n");
    const l = baseLayout();
    (l.auth as { approle: Record<string, unknown> }).approle.secretIdWrapped = true;
    await t.writeLayout(l);
    const r = await t.run(["sync"]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    const stored = (await readFile(path.join(t.agentDir, "approle/secret_id"), "utf8")).trim();
    expect(stored).not.toBe(wrapped.wrappingToken);
    expect(t.double.countRequests({ path: "sys/wrapping/unwrap" })).toBe(1);
    // A later login (token gone) uses the stored plain secret_id without unwrapping again.
    await writeFile(path.join(t.agentDir, "token"), "hvs.revoked-or-garbage\n");
    const r2 = await t.run(["sync"]);
    expect(r2.code).toBe(0);
    expect(t.double.countRequests({ path: "sys/wrapping/unwrap" })).toBe(1);
    expect(t.double.countRequests({ path: /login$/ })).toBe(2);
  });

  it("refuses an already-used wrapping token with a clear message (exit 3)", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "p" });
    const wrapped = t.double.generateSecretId("app", { wrapTtl: 300 });
    if (!("wrappingToken" in wrapped)) throw new Error("expected a wrapping token");
    await fetch(`${t.double.url}/v1/sys/wrapping/unwrap`, { method: "POST", headers: { "X-Vault-Token": wrapped.wrappingToken } });
    await writeFile(path.join(t.agentDir, "approle/secret_id"), wrapped.wrappingToken + "\n");
    const l = baseLayout();
    (l.auth as { approle: Record<string, unknown> }).approle.secretIdWrapped = true;
    await t.writeLayout(l);
    const r = await t.run(["sync"]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/wrapping token that is not valid, expired or already used/);
    expect(r.stderr).not.toContain(wrapped.wrappingToken);
  });

  it("logs in again when the cached token was revoked, and when it is near its max TTL", async () => {
    const t = await tree({ tokenTtl: 3600, tokenMaxTtl: 4000 });
    t.double.kvPut("secret", "app", { password: "p" });
    await t.run(["sync"]);
    const token = (await readFile(path.join(t.agentDir, "token"), "utf8")).trim();
    t.double.revokeToken(token);
    t.double.clearRequests();
    expect((await t.run(["sync"])).code).toBe(0);
    expect(t.double.countRequests({ path: /login$/ })).toBe(1);
    // Past half its TTL the token is renewed; when renewal cannot extend it (max TTL), log in.
    t.double.advanceTime(3000);
    t.double.clearRequests();
    expect((await t.run(["sync"])).code).toBe(0);
    expect(t.double.countRequests({ path: "auth/token/renew-self" })).toBe(1);
    expect(t.double.countRequests({ path: /login$/ })).toBe(0);
    t.double.advanceTime(800);
    t.double.clearRequests();
    expect((await t.run(["sync"])).code).toBe(0);
    expect(t.double.countRequests({ path: /login$/ })).toBe(1);
  });

  it("fails with exit 3 and a hint when the secret_id is wrong", async () => {
    const t = await tree();
    await writeFile(path.join(t.agentDir, "approle/secret_id"), "00000000-0000-0000-0000-000000000000\n");
    const r = await t.run(["sync"]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/AppRole login failed: invalid role_id or secret_id/);
    expect(r.stderr).toMatch(/hint:/);
  });

  it("a second run waits for the lock, then fails with exit 4; a dead holder's lock is recovered", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "p" });
    const sleeper = spawn("sleep", ["30"]);
    try {
      await writeFile(path.join(t.agentDir, "lock"), JSON.stringify({ pid: sleeper.pid, host: (await import("node:os")).hostname(), started: new Date().toISOString(), command: "sync" }));
      const r = await t.run(["sync", "--lock-timeout", "500ms"]);
      expect(r.code).toBe(4);
      expect(r.stderr).toMatch(/another vault-render run holds .*lock: pid \d+ \(sync/);
    } finally {
      sleeper.kill("SIGKILL");
    }
    await new Promise((res) => sleeper.on("close", res));
    const r2 = await t.run(["sync", "--lock-timeout", "2s"]);
    expect(r2.code).toBe(0);
    await expect(stat(path.join(t.agentDir, "lock"))).rejects.toThrow(/ENOENT/);
  });

  it("--dry-run shows the plan with key names only and writes nothing", async () => {
    const t = await tree();
    await seedFull(t);
    const r = await t.run(["sync", "--dry-run"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/create\s+app\.env\s+keys: \+DB_PASSWORD \+DB_USER \+SMTP/);
    expect(r.stdout).toMatch(/plan: 7 created, 0 updated, 0 deleted, 0 unchanged, 0 failed/);
    expect(r.stdout + r.stderr).not.toContain(CANARY);
    await expect(stat(t.publicDir)).rejects.toThrow(/ENOENT/);
    await t.run(["sync"]);
    t.double.kvPut("secret", "app", { password: "next", user: "app", port: 5432, extra: "e" });
    const r2 = await t.run(["sync", "--dry-run"]);
    expect(r2.stdout).toMatch(/update\s+all\.env\s+keys: \+APP_extra ~APP_password/);
    expect(r2.stdout).not.toMatch(/next/);
  });

  it("never prints a secret, the token or the secret_id, even at --debug on failure paths", async () => {
    const t = await tree();
    await seedFull(t);
    const runs = [await t.run(["--debug", "sync"]), await t.run(["--debug", "--log-format", "json", "sync", "--dry-run"])];
    t.double.kvPut("kv", "smtp", { nope: CANARY });
    runs.push(await t.run(["--debug", "sync"]));
    t.double.seal();
    runs.push(await t.run(["--debug", "sync"]));
    const token = (await readFile(path.join(t.agentDir, "token"), "utf8")).trim();
    const secretId = (await readFile(path.join(t.agentDir, "approle/secret_id"), "utf8")).trim();
    for (const r of runs) {
      const out = r.stdout + r.stderr;
      expect(out.length).toBeGreaterThan(0);
      for (const s of [CANARY, "first-pass", "smtp-pass", token, secretId]) expect(out).not.toContain(s);
    }
  });

  it("reports an invalid VAULT_SKIP_VERIFY like the official CLI (exit 2)", async () => {
    const t = await tree();
    const r = await t.run(["sync"], { env: { VAULT_SKIP_VERIFY: "yes" } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/could not parse VAULT_SKIP_VERIFY/);
  });

  it("a generic read source and a template file", async () => {
    const t = await tree({ policy: `path "custom/*" { capabilities = ["read"] }` });
    t.double.setGeneric("custom/thing", { api_key: "k-123", nested: { a: 1 } });
    await mkdir(path.join(t.dir, "templates"));
    await writeFile(path.join(t.dir, "templates/app.conf.tmpl"), 'key = {{ thing.api_key | json }}\nnested = {{ thing.nested }}\n');
    await t.writeLayout(
      baseLayout({
        sources: { thing: { type: "read", path: "custom/thing" } },
        outputs: [{ file: "app.conf", format: "template", template: "templates/app.conf.tmpl" }],
      }),
    );
    const r = await t.run(["sync"]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(await readFile(path.join(t.publicDir, "app.conf"), "utf8")).toBe('key = "k-123"\nnested = {"a":1}\n');
  });

  it("logs in again once when a read answers 'invalid token' mid-run", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "p" });
    expect((await t.run(["sync"])).code).toBe(0);
    t.double.kvPut("secret", "app", { password: "p2" });
    t.double.addFault({ path: "secret/data/app", times: 1, status: 403, body: JSON.stringify({ errors: ["2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"] }) + "\n" });
    t.double.clearRequests();
    const r = await t.run(["sync"]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(t.double.countRequests({ path: /login$/ })).toBe(1);
    expect(t.double.countRequests({ path: "secret/data/app" })).toBe(2);
    expect(await readFile(path.join(t.publicDir, "app.env"), "utf8")).toBe("DB_PASSWORD='p2'\n");
  });

  it("overlapping runs are serialised by the lock and all succeed", async () => {
    const t = await tree();
    await seedFull(t);
    t.double.setLatency(30);
    // Four processes: lock contention between processes is the CLI contract.
    const runs = await Promise.all([1, 2, 3, 4].map(() => t.run(["sync"], { mode: "child" })));
    expect(runs.map((r) => r.code)).toEqual([0, 0, 0, 0]);
    expect(runs.map((r) => r.stderr).join("")).toBe("");
    await expect(stat(path.join(t.agentDir, "lock"))).rejects.toThrow(/ENOENT/);
    const state = JSON.parse(await readFile(path.join(t.agentDir, "state.json"), "utf8")) as { outputs: Record<string, unknown> };
    expect(Object.keys(state.outputs).sort()).toEqual(["all.env", "app.env", "certs/blob.bin", "conf/app.json", "old/password", "pgpass", "postgres/password"]);
    const names = await readdir(t.publicDir);
    expect(names.filter((n) => n.startsWith(".vault-render.tmp-"))).toEqual([]);
  });

  it("retries 5xx and 429 with backoff, never a 403, and reports a proxy's HTML page plainly", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "p" });
    t.double.addFault({ path: "secret/data/app", times: 1, status: 502, html: true });
    t.double.addFault({ path: "secret/data/app", times: 1, status: 429, headers: { "Retry-After": "1" } });
    const clock = recordingClock();
    const r = await t.run(["sync"], { clock });
    expect(r).toMatchObject({ code: 0, stderr: "" });
    // The retry after the 429 waited its Retry-After (1 s).
    expect(clock.sleeps).toContain(1000);
    expect(t.double.countRequests({ path: "secret/data/app" })).toBe(3);
    t.double.addFault({ path: "secret/data/app", status: 502, html: true });
    const r2 = await t.run(["sync"]);
    expect(r2.code).toBe(3);
    expect(r2.stderr).toMatch(/read secret\/data\/app: HTTP 502 with a non-JSON HTML page/);
    expect(r2.stderr).not.toMatch(/<html/i);
  });

  it("prints the layout's JSON Schema", async () => {
    const t = await tree();
    const r = await t.run(["schema"]);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout) as { properties: Record<string, unknown> };
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(["version", "vault", "auth", "paths", "sources", "outputs"]));
  });

  it("KV version detection: a 403 from the mounts preflight is a policy error, never a silent fall back to v1", async () => {
    // No capability anywhere in "secret/": the preflight answers 403 (as for a mount that does not exist).
    const t = await tree({ policy: `path "kv/*" { capabilities = ["read"] }` });
    t.double.kvPut("secret", "app", { password: "p" });
    const r = await t.run(["sync"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/read sys\/internal\/ui\/mounts\/secret: permission denied: the token has no capability on any path in this mount/);
    expect(r.stderr).toMatch(/declare "kvVersion"/);
    expect(t.double.countRequests({ path: "secret/app" })).toBe(0);
  });

  it("removes stale temp files left by a crashed run, and deletes the secret_id file after login when asked", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "p" });
    await mkdir(t.publicDir, { recursive: true });
    await writeFile(path.join(t.publicDir, ".vault-render.tmp-999-deadbeef"), "partial");
    const l = baseLayout();
    (l.auth as { approle: Record<string, unknown> }).approle.removeSecretIdFile = true;
    await t.writeLayout(l);
    const r = await t.run(["sync"]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(await readdir(t.publicDir)).toEqual(["app.env"]);
    await expect(stat(path.join(t.agentDir, "approle/secret_id"))).rejects.toThrow(/ENOENT/);
    // The cached token keeps working without the secret_id file.
    expect((await t.run(["sync"])).code).toBe(0);
  });

  it("a KV version declared on one source serves every source on that mount (no preflight)", async () => {
    const t = await tree();
    t.double.kvPut("secret", "a", { password: "pa" });
    t.double.kvPut("secret", "b", { password: "pb" });
    await t.writeLayout(
      baseLayout({
        sources: { a: { type: "kv", mount: "secret", path: "a", kvVersion: 2 }, b: { type: "kv", mount: "secret", path: "b" } },
        outputs: [
          { file: "a", format: "raw", value: "a.password" },
          { file: "b", format: "raw", value: "b.password" },
        ],
      }),
    );
    expect((await t.run(["sync"])).code).toBe(0);
    expect(t.double.countRequests({ path: /^sys\/internal\/ui\/mounts/ })).toBe(0);
    expect(await readFile(path.join(t.publicDir, "b"), "utf8")).toBe("pb");
  });
});
