/**
 * The single executable (README "Install", scripts/build-binary.js): built into a temp dir, copied
 * alone into another one (no node_modules, no dist/, no package.json in reach) and run with an
 * empty environment (no PATH, so no `node` to fall back on): `--version`, `--help`, `schema` and a
 * sync against the Vault double, with nothing on stderr (no "Single executable application is an
 * experimental feature" warning: disableExperimentalSEAWarning).
 */
import { execFile, spawn } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ROOT, scaled, trackedTrees } from "./helpers.js";

const run = promisify(execFile);
const tree = trackedTrees(afterEach);

describe("the single executable", () => {
  let work: string;
  let exe: string;

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), "vr-sea-"));
    const build = path.join(work, "build");
    await run(process.execPath, [path.join(ROOT, "scripts", "build-binary.js"), "--out", build], { cwd: ROOT, timeout: scaled(240_000), maxBuffer: 16 << 20 });
    await mkdir(path.join(work, "alone"));
    exe = path.join(work, "alone", "vault-render");
    await copyFile(path.join(build, "vault-render"), exe);
    await rm(build, { recursive: true, force: true });
  }, scaled(300_000));

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("prints its version and help with an empty environment, nothing on stderr", async () => {
    const pkg = JSON.parse(await readFile(path.join(ROOT, "package.json"), "utf8")) as { version: string };
    expect(await run(exe, ["--version"], { cwd: path.dirname(exe), env: {} })).toEqual({ stdout: `${pkg.version}\n`, stderr: "" });
    const help = await run(exe, ["--help"], { cwd: path.dirname(exe), env: {} });
    expect(help.stderr).toBe("");
    expect(help.stdout).toMatch(/^Usage: vault-render /);
    for (const command of ["sync", "check", "status", "policy", "watch", "schema"]) expect(help.stdout).toContain(command);
  });

  it("prints the schema it was built with (no file beside it)", async () => {
    const s = await run(exe, ["schema"], { cwd: path.dirname(exe), env: {} });
    expect(s).toEqual({ stdout: await readFile(path.join(ROOT, "schema", "vault-layout.schema.json"), "utf8"), stderr: "" });
  });

  it("syncs against the Vault double, then a no-op sync and status", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "pw-binary" });
    const env = { VAULT_ADDR: t.double.url, NO_COLOR: "1" };
    const args = ["--layout", t.layoutFile];
    const first = await run(exe, [...args, "sync"], { cwd: t.dir, env });
    expect(first.stderr).not.toMatch(/error|warning/i);
    expect(await readFile(path.join(t.publicDir, "app.env"), "utf8")).toContain("DB_PASSWORD='pw-binary'");
    // -v: pino, through the plain stream of src/core/support/log.ts (no worker thread to find).
    const again = await run(exe, [...args, "sync", "-v"], { cwd: t.dir, env });
    expect(again.stderr).toMatch(/^vault-render: sync: 0 created, 0 updated, 0 deleted, 1 unchanged, 0 failed/m);
    const status = await run(exe, [...args, "status", "--json"], { cwd: t.dir, env });
    expect(status.stderr).toBe("");
    expect(status.stdout).toContain("app.env");
    // A failure is an exit code and one line, as with the bundle.
    const bad = await run(exe, ["--layout", path.join(t.dir, "missing.json"), "sync"], { cwd: t.dir, env }).then(
      () => ({ code: 0, stderr: "" }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^vault-render: cannot read layout .*ENOENT/);
  });

  it("watches (chokidar is in it too) and stops cleanly on SIGTERM", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "pw-watch" });
    const child = spawn(exe, ["--layout", t.layoutFile, "watch", "-v", "--log-format", "json"], { cwd: t.dir, env: { VAULT_ADDR: t.double.url }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const closed = new Promise<number | null>((resolve) => child.on("close", resolve));
    const deadline = Date.now() + scaled(20_000);
    while (!/"msg":"sync: 1 created/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    child.kill("SIGTERM");
    expect(await closed).toBe(0);
    expect(out).toMatch(/"msg":"sync: 1 created/);
    expect(out).toMatch(/watch stopped after \d+ pass/);
    expect(await readFile(path.join(t.publicDir, "app.env"), "utf8")).toContain("DB_PASSWORD='pw-watch'");
  });
});
