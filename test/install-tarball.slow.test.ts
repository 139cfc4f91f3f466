/**
 * Install from the tarball, as an operator would (README "Install"): a copy of the checkout with
 * no dist/ runs `npm pack` (its `prepack` builds), the tarball holds only what a run needs, and
 * `npm install -g --prefix <tmp> --offline` of it puts a `vault-render` on PATH that runs
 * `--version`, `schema` and a sync against the Vault double with no node_modules of the checkout
 * in reach (the bundle carries its dependencies; the package has none).
 */
import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ROOT, scaled, trackedTrees } from "./helpers.js";

const run = promisify(execFile);
const tree = trackedTrees(afterEach);

/** PATH for the installed command: the prefix's bin, node's own directory and the system's. */
function cleanEnv(prefix: string, extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: [path.join(prefix, "bin"), path.dirname(process.execPath), "/usr/bin", "/bin"].join(":"), HOME: prefix, NO_COLOR: "1", ...extra };
}

/** The checkout's tracked and new (not ignored) files, so the copy is what a clone would be. */
async function checkoutFiles(): Promise<string[]> {
  const { stdout } = await run("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: ROOT, maxBuffer: 16 << 20 });
  return stdout.split("\0").filter((f) => f !== "" && !f.startsWith("node_modules"));
}

describe("npm pack + npm install -g", () => {
  let work: string;
  let prefix: string;
  let tarball: string;
  let packed: string[];

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), "vr-pack-"));
    const src = path.join(work, "src-copy");
    for (const f of await checkoutFiles()) await cp(path.join(ROOT, f), path.join(src, f), { force: true, errorOnExist: false }).catch((e: NodeJS.ErrnoException) => { if (e.code !== "ENOENT") throw e; });
    await symlink(path.join(ROOT, "node_modules"), path.join(src, "node_modules"));
    const out = path.join(work, "out");
    await mkdir(out);
    const npmEnv = { ...process.env, npm_config_update_notifier: "false", npm_config_audit: "false", npm_config_fund: "false" };
    const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", out], { cwd: src, env: npmEnv, maxBuffer: 16 << 20, timeout: scaled(180_000) });
    const info = (JSON.parse(stdout.slice(stdout.indexOf("["))) as Array<{ filename: string; files: Array<{ path: string }> }>)[0]!;
    tarball = path.join(out, info.filename);
    packed = info.files.map((f) => f.path).sort();
    prefix = path.join(work, "prefix");
    await run("npm", ["install", "-g", "--prefix", prefix, "--offline", "--no-audit", "--no-fund", tarball], { cwd: work, env: npmEnv, timeout: scaled(120_000) });
  }, scaled(300_000));

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("ships the bin, the bundle, the schema and nothing the tests alone need", () => {
    expect(packed.filter((f) => !/^dist\/chunks\/[\w-]+\.js$/.test(f))).toEqual([
      "README.md",
      "bin/vault-render.js",
      "dist/THIRD-PARTY-LICENSES.txt",
      "dist/cli.js",
      "dist/hcl2json.wasm.gz",
      "dist/vault-layout.schema.json",
      "package.json",
      "schema/vault-layout.schema.json",
    ]);
    expect(packed.filter((f) => f.startsWith("dist/chunks/")).length).toBeGreaterThan(5);
  });

  it("has no dependencies to install: the bundle carries them, so nothing but the package lands in the prefix", async () => {
    const lib = path.join(prefix, "lib", "node_modules");
    const pkg = JSON.parse(await readFile(path.join(lib, "vault-render", "package.json"), "utf8")) as { dependencies?: unknown };
    expect(pkg.dependencies).toBeUndefined();
    expect(await readdir(lib)).toEqual(["vault-render"]);
    expect((await readdir(path.join(lib, "vault-render"))).sort()).toEqual(["README.md", "bin", "dist", "package.json", "schema"]);
  });

  it("runs from PATH: --version, schema", async () => {
    const pkg = JSON.parse(await readFile(path.join(ROOT, "package.json"), "utf8")) as { version: string };
    const v = await run("vault-render", ["--version"], { cwd: work, env: cleanEnv(prefix) });
    expect(v).toEqual({ stdout: `${pkg.version}\n`, stderr: "" });
    const s = await run("vault-render", ["schema"], { cwd: work, env: cleanEnv(prefix) });
    expect(s.stdout).toBe(await readFile(path.join(ROOT, "schema", "vault-layout.schema.json"), "utf8"));
  });

  it("imports a Vault Agent HCL config (hcl2json's wasm ships in the package)", async () => {
    const dir = await mkdtemp(path.join(work, "import-"));
    const hcl = [
      'auto_auth {',
      '  method "approle" {',
      '    config = {',
      `      role_id_file_path   = "${dir}/agent/role_id"`,
      `      secret_id_file_path = "${dir}/agent/secret_id"`,
      '    }',
      '  }',
      '}',
      'template {',
      `  destination = "${dir}/srv/app/password"`,
      '  contents    = "{{ with secret \\"secret/data/app\\" }}{{ .Data.data.password }}{{ end }}"',
      '}',
      '',
    ].join("\n");
    await writeFile(path.join(dir, "agent.hcl"), hcl);
    const out = path.join(dir, "layout.json");
    await run("vault-render", ["import", path.join(dir, "agent.hcl"), "--out", out], { cwd: dir, env: cleanEnv(prefix) });
    const layout = JSON.parse(await readFile(out, "utf8")) as { sources: Record<string, unknown>; outputs: unknown[] };
    expect(layout.sources).toEqual({ "secret-app": { type: "kv", mount: "secret", path: "app", kvVersion: 2 } });
    expect(layout.outputs).toEqual([{ file: "password", format: "raw", value: "secret-app.password" }]);
  });

  it("syncs against the Vault double", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "pw-installed" });
    const sync = await run("vault-render", ["--layout", t.layoutFile, "sync"], { cwd: t.dir, env: cleanEnv(prefix, { VAULT_ADDR: t.double.url }) });
    expect(sync.stderr).not.toMatch(/error/i);
    expect(await readFile(path.join(t.publicDir, "app.env"), "utf8")).toContain("DB_PASSWORD='pw-installed'");
    const again = await run("vault-render", ["--layout", t.layoutFile, "status"], { cwd: t.dir, env: cleanEnv(prefix, { VAULT_ADDR: t.double.url }) });
    expect(again.stdout).toContain("app.env");
  });
});

