/**
 * Validate before commit, end to end against the double with real commands: an output's
 * `validate` runs on the complete temp file before the rename; a failure keeps the live file
 * (same bytes, same inode), fails that output (exit 1) with the command's output redacted, and
 * leaves its hooks unrun; a PKI set's validator sees the whole new set; `check` runs the same
 * validations on the live files; a dry run and an unchanged file run none.
 */
import { readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Tree } from "./helpers.js";
import { PKI_LEASE_RULES, APP_POLICY, baseLayout, makeTree, scaled, snapshot } from "./helpers.js";
import { TEMP_PREFIX } from "../src/core/fs/paths.js";

let trees: Tree[] = [];
afterEach(async () => {
  await Promise.all(trees.map((t) => t.cleanup()));
  trees = [];
});

const SECRET = "CANARY-validate-7c41d2-secret";

/** A validator that accepts a file holding "good" and otherwise prints the file (the secret) and exits 3. */
const GREP_GOOD = ["sh", "-c", 'grep -q good "$1" || { echo "rejected: $(cat "$1")" >&2; exit 3; }', "sh", "{}"];

async function tree(outputs: unknown[], value = "good-value-1234", extra: Record<string, unknown> = {}): Promise<Tree> {
  const t = await makeTree();
  trees.push(t);
  t.double.kvPut("secret", "app", { password: value });
  await t.writeLayout(baseLayout({ outputs, ...extra }));
  return t;
}

async function inode(file: string): Promise<number> {
  return (await stat(file)).ino;
}

async function temps(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).filter((n) => path.basename(n).startsWith(TEMP_PREFIX));
}

async function state(t: Tree): Promise<{ pendingHooks: Record<string, unknown>; outputs: Record<string, { lastError: { code: string } | null }> }> {
  return JSON.parse(await readFile(path.join(t.agentDir, "state.json"), "utf8")) as never;
}

describe("validate before commit: file outputs", () => {
  it("a validator that accepts the file: it is written, then replaced when the secret changes", async () => {
    const t = await tree([{ file: "app.json", format: "json", keys: { password: "app.password" }, validate: ["node", "-e", "JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8'))", "{}"] }]);
    expect((await t.run(["sync"])).code).toBe(0);
    const file = path.join(t.publicDir, "app.json");
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual({ password: "good-value-1234" });
    t.double.kvPut("secret", "app", { password: "good-value-5678" });
    expect((await t.run(["sync"])).code).toBe(0);
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual({ password: "good-value-5678" });
    expect(await temps(t.publicDir)).toEqual([]);
  });

  it("every {} in an argument is the complete temp file's absolute path, at 0644 beside the target, gone after the rename", async () => {
    const seen = "seen.txt";
    const script = 'printf "%s\\n" "$1" "$2" > seen.txt; f="${1#-x}"; stat -c %a "$f" >> seen.txt; cat "$f" >> seen.txt';
    const t = await tree([{ file: "sub/app.env", format: "env", keys: { P: "app.password" }, validate: ["sh", "-c", script, "sh", "-x{}", "{}{}"] }]);
    expect((await t.run(["sync"])).code).toBe(0);
    const [first, second, mode, ...content] = (await readFile(path.join(t.dir, seen), "utf8")).split("\n");
    const tmp = (first as string).slice(2);
    expect(first?.startsWith("-x")).toBe(true);
    expect(path.isAbsolute(tmp)).toBe(true);
    expect(path.dirname(tmp)).toBe(path.join(t.publicDir, "sub"));
    expect(path.basename(tmp).startsWith(TEMP_PREFIX)).toBe(true);
    expect(second).toBe(tmp + tmp);
    expect(mode).toBe("644");
    // The validator read the whole new file: what was then renamed into place.
    expect(content.join("\n")).toBe(await readFile(path.join(t.publicDir, "sub/app.env"), "utf8"));
    await expect(stat(tmp)).rejects.toThrow(/ENOENT/);
  });

  it("a failing validator keeps the live file (same bytes, same inode), fails that output with exit 1 and its redacted output; other outputs still sync", async () => {
    const t = await tree([
      { file: "app.env", format: "env", keys: { P: "app.password" }, validate: GREP_GOOD },
      { file: "plain.env", format: "env", keys: { P: "app.password" } },
    ]);
    expect((await t.run(["sync"])).code).toBe(0);
    const file = path.join(t.publicDir, "app.env");
    const before = await readFile(file);
    const ino = await inode(file);
    t.double.kvPut("secret", "app", { password: SECRET });
    const r = await t.run(["sync"]);
    expect(r.code).toBe(1);
    expect(await readFile(file)).toEqual(before);
    expect(await inode(file)).toBe(ino);
    expect(await readFile(path.join(t.publicDir, "plain.env"), "utf8")).toContain(SECRET);
    // The command printed the secret: the line shows it redacted.
    expect(r.stderr).toMatch(/app\.env: validate command "sh" failed with exit code 3 for app\.env: rejected: P='\[REDACTED\]'/);
    expect(r.stderr).toMatch(/hint: the live file was kept/);
    expect(r.stderr).not.toContain(SECRET);
    expect(await temps(t.publicDir)).toEqual([]);
    expect((await state(t)).outputs["app.env"]?.lastError?.code).toBe("VALIDATION_FAILED");
    const json = await t.run(["sync", "--json"]);
    expect(json.code).toBe(1);
    const summary = JSON.parse(json.stdout) as { files: Array<{ file: string; action: string; error?: { code: string } }> };
    expect(summary.files.find((f) => f.file === "app.env")).toMatchObject({ action: "failed", error: { code: "VALIDATION_FAILED" } });
    expect(json.stdout).not.toContain(SECRET);
  });

  it("the error line carries at most a few hundred characters of the output, redacted before it is cut", async () => {
    // 250 filler characters, then the secret across the cut: redacted first, so no prefix of it shows.
    const script = 'printf "%0250d" 0; cat "$1"; exit 1';
    const t = await tree([{ file: "password", format: "raw", value: "app.password", validate: ["sh", "-c", script, "sh", "{}"] }], SECRET);
    const r = await t.run(["sync"]);
    expect(r.code).toBe(1);
    const line = r.stderr.split("\n").find((l) => l.includes("validate command")) as string;
    expect(line).toContain("[REDACTED]");
    expect(line).not.toContain(SECRET.slice(0, 8));
    const out = /for password: (\S+)/.exec(line)?.[1] ?? "";
    expect(out.length).toBeLessThanOrEqual(301);
  });

  it("a validator that runs past validateTimeout is stopped (SIGTERM to its group): the output fails, nothing is written", async () => {
    const t = await tree([{ file: "app.env", format: "env", keys: { P: "app.password" }, validate: ["node", "-e", "setInterval(() => 0, 1000)", "{}"], validateTimeout: `${scaled(1000)}ms` }]);
    const r = await t.run(["sync"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/validate command "node" timed out after \d+ms and was stopped \(SIGTERM\) for app\.env/);
    await expect(stat(path.join(t.publicDir, "app.env"))).rejects.toThrow(/ENOENT/);
    expect(await temps(t.publicDir)).toEqual([]);
  });

  it("a command that cannot start fails the output", async () => {
    const t = await tree([{ file: "app.env", format: "env", keys: { P: "app.password" }, validate: ["/nonexistent/validator", "{}"] }]);
    const r = await t.run(["sync"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/validate command "\/nonexistent\/validator" could not start: ENOENT/);
    await expect(stat(path.join(t.publicDir, "app.env"))).rejects.toThrow(/ENOENT/);
  });

  it("a dry run and an unchanged file run no validator", async () => {
    const count = ["sh", "-c", 'echo x >> "$0"; test -s "$1"', "calls.log", "{}"];
    const t = await tree([{ file: "app.env", format: "env", keys: { P: "app.password" }, validate: count }]);
    const calls = async () => (await readFile(path.join(t.dir, "calls.log"), "utf8").catch(() => "")).split("\n").filter(Boolean).length;
    expect((await t.run(["sync", "--dry-run"])).code).toBe(0);
    expect(await calls()).toBe(0);
    expect((await t.run(["sync"])).code).toBe(0);
    expect(await calls()).toBe(1);
    expect((await t.run(["sync"])).code).toBe(0);
    expect(await calls()).toBe(1);
    t.double.kvPut("secret", "app", { password: "good-value-9999" });
    expect((await t.run(["sync", "--dry-run"])).code).toBe(0);
    expect(await calls()).toBe(1);
  });

  it("after a failed validation the output's hooks do not run; the next sync that writes the file runs them", async () => {
    const t = await tree([{ file: "app.env", format: "env", keys: { P: "app.password" }, validate: GREP_GOOD, hooks: ["reload"] }], "good-value-1234", {
      hooks: { reload: { command: ["sh", "-c", "echo ran >> hook.log"] } },
    });
    const runs = async () => (await readFile(path.join(t.dir, "hook.log"), "utf8").catch(() => "")).split("\n").filter(Boolean).length;
    expect((await t.run(["sync"])).code).toBe(0);
    expect(await runs()).toBe(1);
    t.double.kvPut("secret", "app", { password: SECRET });
    expect((await t.run(["sync"])).code).toBe(1);
    expect(await runs()).toBe(1);
    expect((await t.run(["sync"])).code).toBe(1);
    expect(await runs()).toBe(1);
    t.double.kvPut("secret", "app", { password: "good-value-2" });
    expect((await t.run(["sync"])).code).toBe(0);
    expect(await runs()).toBe(2);
    expect((await state(t)).pendingHooks).toEqual({});
    expect(await readFile(path.join(t.publicDir, "app.env"), "utf8")).toContain("good-value-2");
  });

  it("a layout whose validate names no file is invalid (exit 2), the JSON path named", async () => {
    const t = await tree([{ file: "app.env", format: "env", keys: { P: "app.password" }, validate: ["true"] }]);
    const r = await t.run(["sync"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/\$\.outputs\[0\]\.validate: the command must name the file it checks/);
  });
});

const HAS_OPENSSL = (() => {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

/** Certificate and key of the set match (node's X509Certificate: no openssl needed). */
const CERT_MATCHES_KEY = [
  "node",
  "-e",
  "const c = require('crypto'), fs = require('fs'); const x = new c.X509Certificate(fs.readFileSync(process.argv[1])); if (!x.checkPrivateKey(c.createPrivateKey(fs.readFileSync(process.argv[2])))) process.exit(1); fs.writeFileSync('set.txt', process.argv.slice(1).join('\\n'))",
  "{cert}",
  "{key}",
  "{ca}",
  "{fullchain}",
  "{}",
];

async function pkiTree(validate: string[]): Promise<Tree> {
  const t = await makeTree({ policy: APP_POLICY + PKI_LEASE_RULES });
  trees.push(t);
  t.double.mountPki("pki_int");
  t.double.addPkiRole("pki_int", "web", { allowedDomains: ["home.arpa"], allowSubdomains: true, maxTtl: 30 * 86400 });
  await t.writeLayout(baseLayout({ sources: {}, outputs: [{ format: "pki", dir: "certs/web", mount: "pki_int", role: "web", commonName: "web.home.arpa", ttl: "720h", validate }] }));
  return t;
}

describe("validate before commit: PKI sets", () => {
  it("the validator sees the whole new set (each placeholder a temp of that member; {} the certificate) before it commits", async () => {
    const t = await pkiTree(CERT_MATCHES_KEY);
    expect((await t.run(["sync"])).code).toBe(0);
    const [cert, key, ca, full, main] = (await readFile(path.join(t.dir, "set.txt"), "utf8")).split("\n");
    for (const p of [cert, key, ca, full]) {
      expect(path.dirname(p as string)).toBe(path.join(t.publicDir, "certs/web"));
      expect(path.basename(p as string).startsWith(TEMP_PREFIX)).toBe(true);
    }
    expect(new Set([cert, key, ca, full]).size).toBe(4);
    expect(main).toBe(cert);
    expect((await readdir(path.join(t.publicDir, "certs/web"))).sort()).toEqual(["ca.pem", "cert.pem", "fullchain.pem", "key.pem"]);
  });

  it.skipIf(!HAS_OPENSSL)("openssl x509 -noout -in {} accepts the issued certificate", async () => {
    const t = await pkiTree(["openssl", "x509", "-noout", "-in", "{}"]);
    expect((await t.run(["sync"])).code).toBe(0);
    expect(await readFile(path.join(t.publicDir, "certs/web/cert.pem"), "utf8")).toMatch(/BEGIN CERTIFICATE/);
  });

  it("a validator that rejects a new set leaves the live set as it was (bytes and inodes), exit 1, no temp left", async () => {
    const t = await pkiTree(CERT_MATCHES_KEY);
    expect((await t.run(["sync"])).code).toBe(0);
    const dir = path.join(t.publicDir, "certs/web");
    const before = await snapshot(dir);
    // A new request (another name) makes the set due; the validator rejects it.
    const layout = JSON.parse(await readFile(t.layoutFile, "utf8")) as { outputs: Array<Record<string, unknown>> };
    Object.assign(layout.outputs[0] as object, { commonName: "other.home.arpa", validate: ["sh", "-c", 'echo "no: $(cat "$1")"; exit 2', "sh", "{key}"] });
    await t.writeLayout(layout);
    const r = await t.run(["sync"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/certs\/web: validate command "sh" failed with exit code 2 for certs\/web: no: /);
    // The new private key the command printed is redacted.
    expect(r.stderr).toMatch(/no: \[REDACTED\]/);
    expect(r.stderr).not.toMatch(/PRIVATE KEY/);
    expect(await snapshot(dir)).toEqual(before);
    expect(await temps(t.publicDir)).toEqual([]);
    await expect(stat(path.join(t.agentDir, "commit-journal.json"))).rejects.toThrow(/ENOENT/);
    // Accepted again: the new set commits.
    Object.assign(layout.outputs[0] as object, { validate: CERT_MATCHES_KEY });
    await t.writeLayout(layout);
    expect((await t.run(["sync"])).code).toBe(0);
    expect(await snapshot(dir)).not.toEqual(before);
  });
});

describe("check runs the validators on the live files", () => {
  it("a live file its validator rejects is a `validate` error finding (exit 1), offline too, its output redacted", async () => {
    const t = await tree([{ file: "app.env", format: "env", keys: { P: "app.password" }, validate: ["sh", "-c", 'grep -q P= "$1"', "sh", "{}"] }], SECRET);
    expect((await t.run(["sync"])).code).toBe(0);
    for (const args of [[], ["--offline"]]) {
      const ok = await t.run(["check", "--json", ...args]);
      expect(ok.code).toBe(0);
      expect(JSON.parse(ok.stdout)).toMatchObject({ findings: expect.arrayContaining([expect.objectContaining({ check: "validate", severity: "ok", subject: "app.env" })]) as unknown });
    }
    const layout = JSON.parse(await readFile(t.layoutFile, "utf8")) as { outputs: Array<Record<string, unknown>> };
    (layout.outputs[0] as Record<string, unknown>).validate = ["sh", "-c", 'echo "bad: $(cat "$1")"; exit 4', "sh", "{}"];
    await t.writeLayout(layout);
    const before = await snapshot(t.publicDir);
    for (const args of [[], ["--offline"]]) {
      const r = await t.run(["check", "--json", ...args]);
      expect(r.code).toBe(1);
      expect(r.stdout + r.stderr).not.toContain(SECRET);
      const report = JSON.parse(r.stdout) as { findings: Array<{ check: string; severity: string; subject: string; message: string }> };
      const f = report.findings.find((x) => x.check === "validate");
      expect(f).toMatchObject({ severity: "error", subject: "app.env" });
      expect(f?.message).toMatch(/failed with exit code 4 for app\.env: bad: (P=')?\[REDACTED\]/);
      const table = await t.run(["check", ...args]);
      expect(table.stdout).toMatch(/FAIL\s+validate\s+app\.env/);
    }
    expect(await snapshot(t.publicDir)).toEqual(before);
  });

  it("check validates a PKI set's live files with their placeholders", async () => {
    const t = await pkiTree(CERT_MATCHES_KEY);
    expect((await t.run(["sync"])).code).toBe(0);
    await writeFile(path.join(t.dir, "set.txt"), "");
    const r = await t.run(["check", "--offline", "--json"]);
    expect((JSON.parse(r.stdout) as { findings: Array<{ severity: string }> }).findings.filter((x) => x.severity === "error")).toEqual([]);
    expect(r.code).toBe(0);
    const [cert, key] = (await readFile(path.join(t.dir, "set.txt"), "utf8")).split("\n");
    expect(cert).toBe(path.join(t.publicDir, "certs/web/cert.pem"));
    expect(key).toBe(path.join(t.publicDir, "certs/web/key.pem"));
    // A certificate that does not match the key on disk: check's validator finding says so.
    const other = await pkiTree(CERT_MATCHES_KEY);
    expect((await other.run(["sync"])).code).toBe(0);
    await writeFile(path.join(t.publicDir, "certs/web/key.pem"), await readFile(path.join(other.publicDir, "certs/web/key.pem")));
    const bad = await t.run(["check", "--offline", "--json"]);
    expect(bad.code).toBe(1);
    const f = (JSON.parse(bad.stdout) as { findings: Array<{ check: string; severity: string; subject: string; message: string }> }).findings.find((x) => x.check === "validate");
    expect(f).toMatchObject({ severity: "error", subject: "certs/web" });
    expect(f?.message).toMatch(/validate command "node" failed with exit code 1 for certs\/web/);
  });
});

describe("validate before commit: leases", () => {
  it("a replaced lease whose output failed validation is not revoked: the live file still holds its credentials", async () => {
    const t = await makeTree({ policy: APP_POLICY + PKI_LEASE_RULES });
    trees.push(t);
    t.double.mountDatabase("database");
    t.double.addDbRole("database", "app", { defaultTtl: 3600, maxTtl: 7200 });
    // Accepts while ./allow exists (the validator runs in the layout's directory).
    const validate = ["sh", "-c", 'test -e allow && test -s "$1"', "sh", "{}"];
    await t.writeLayout(baseLayout({ sources: { db: { type: "lease", path: "database/creds/app" } }, outputs: [{ file: "db.env", format: "env", keys: { P: "db.password" }, validate }] }));
    await writeFile(path.join(t.dir, "allow"), "");
    expect((await t.run(["sync"])).code).toBe(0);
    const live = await readFile(path.join(t.publicDir, "db.env"), "utf8");
    const oldLease = (JSON.parse(await readFile(path.join(t.agentDir, "state.json"), "utf8")) as { leases: { db: { leaseId: string } } }).leases.db.leaseId;
    await rm(path.join(t.dir, "allow"));
    const r = await t.run(["rotate", "db.env"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the replaced lease of db is not revoked: db\.env failed/);
    expect(t.double.countRequests({ path: "database/creds/app" })).toBe(2);
    expect(await readFile(path.join(t.publicDir, "db.env"), "utf8")).toBe(live);
    expect(t.double.leaseInfo(oldLease)?.revoked).not.toBe(true);
    // Accepted again: the new credentials are written.
    await writeFile(path.join(t.dir, "allow"), "");
    expect((await t.run(["sync"])).code).toBe(0);
    expect(await readFile(path.join(t.publicDir, "db.env"), "utf8")).not.toBe(live);
  });
});
