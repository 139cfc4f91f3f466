/**
 * What the built CLI carries and loads: node-vault rides on our transport, so axios (and what it
 * drags in: form-data, follow-redirects, proxy-from-env, Node's bundled undici) is neither in the
 * bundle's module graph nor loaded by a run, and the stubs that stand in for it (and for
 * node-vault's load-time debug and tv4) are never touched: each throws on use, and a sync that
 * logs in, reads KV, issues a certificate and reads leased credentials succeeds.
 */
import { readdirSync, readFileSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { BIN, baseLayout, PKI_LEASE_RULES, ROOT, runCli, scaled, trackedTrees } from "./helpers.js";

const tree = trackedTrees(afterEach);

describe("the bundle", () => {
  it("has no axios, nor its dependencies, in its module graph (dist/bundle-inputs.json from esbuild's metafile)", () => {
    const inputs = JSON.parse(readFileSync(path.join(ROOT, "dist", "bundle-inputs.json"), "utf8")) as string[];
    // The graph is real: node-vault and our transport are in it.
    expect(inputs.some((i) => /node_modules\/node-vault\/src\/index\.js$/.test(i))).toBe(true);
    expect(inputs.some((i) => /src\/core\/vault\/transport\.ts$/.test(i))).toBe(true);
    const banned = inputs.filter((i) => /node_modules\/(axios|form-data|follow-redirects|proxy-from-env|mime-types|mime-db|combined-stream|asynckit|debug|ms|supports-color|has-flag|tv4)\//.test(i));
    expect(banned).toEqual([]);
    expect(inputs).toContain("vr-no-axios:axios");
    // node-vault's load-time debug and tv4 are stubs: it is handed ours in its config.
    expect(inputs).toEqual(expect.arrayContaining(["vr-node-vault-stub:debug", "vr-node-vault-stub:tv4"]));
  });

  it("ships the licence of every npm package it bundles (dist/THIRD-PARTY-LICENSES.txt)", () => {
    const inputs = JSON.parse(readFileSync(path.join(ROOT, "dist", "bundle-inputs.json"), "utf8")) as string[];
    const names = new Set(inputs.map((i) => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(i)?.[1]).filter((n): n is string => n !== undefined));
    expect(names.size).toBeGreaterThan(5);
    const text = readFileSync(path.join(ROOT, "dist", "THIRD-PARTY-LICENSES.txt"), "utf8");
    const listed = new Set([...text.matchAll(/^((?:@[^/\s]+\/)?[^@\s]+)@\S+ \(/gm)].map((m) => m[1]));
    expect([...names].filter((n) => !listed.has(n))).toEqual([]);
    expect(text).not.toMatch(/no licence file/);
  });

  it("a sync (login, KV, a certificate, leased credentials) and a check never load axios or undici", async () => {
    const t = await tree({ policy: `path "secret/data/*" { capabilities = ["read"] }\n${PKI_LEASE_RULES}` });
    t.double.kvPut("secret", "app", { password: "pw-1" });
    t.double.mountPki("pki_int");
    t.double.addPkiRole("pki_int", "web", { allowedDomains: ["example.test"], allowSubdomains: true, maxTtl: 30 * 86400 });
    t.double.mountDatabase("database");
    t.double.addDbRole("database", "app", { defaultTtl: 3600, maxTtl: 86400 });
    await t.writeLayout(
      baseLayout({
        sources: { app: { type: "kv", mount: "secret", path: "app", kvVersion: 2 }, db: { type: "lease", path: "database/creds/app" } },
        outputs: [
          { file: "app.env", format: "env", keys: { DB_PASSWORD: "app.password", DB_USER: "db.username" } },
          { format: "pki", dir: "certs", mount: "pki_int", role: "web", commonName: "a.example.test", ttl: "720h" },
        ],
      }),
    );
    const hook = path.join(t.dir, "modules.mjs");
    await writeFile(
      hook,
      `import { writeFileSync } from "node:fs";\nprocess.on("exit", () => writeFileSync(process.env.VR_MODULES_FILE + "." + process.argv.at(-1), process.moduleLoadList.join("\\n")));\n`,
    );
    const env = { NODE_OPTIONS: `--import ${hook}`, VR_MODULES_FILE: path.join(t.dir, "modules") };
    const sync = await t.run(["sync"], { env, mode: "child" });
    expect({ code: sync.code, stderr: sync.stderr }).toEqual({ code: 0, stderr: "" });
    expect(await readFile(path.join(t.publicDir, "app.env"), "utf8")).toContain("DB_PASSWORD='pw-1'");
    const check = await t.run(["check"], { env, mode: "child" });
    expect({ code: check.code, out: check.stdout }).toEqual({ code: 0, out: expect.any(String) as string });
    for (const run of ["sync", "check"]) {
      const loaded = (await readFile(`${env.VR_MODULES_FILE}.${run}`, "utf8")).split("\n");
      // The list is real: the http client and TLS were loaded.
      expect(loaded).toContain("NativeModule _http_client");
      expect(loaded.filter((m) => /undici|axios/i.test(m))).toEqual([]);
    }
  }, scaled(60_000));
});

describe("test hooks stay out of the production path", () => {
  it("no VAULT_RENDER_TEST_ string in the bundle (dist/cli.js and its chunks) nor in bin/vault-render.js", () => {
    const files = [path.join(ROOT, "dist", "cli.js"), BIN, ...readdirSync(path.join(ROOT, "dist", "chunks")).map((f) => path.join(ROOT, "dist", "chunks", f))];
    expect(files.length).toBeGreaterThan(2);
    expect(files.filter((f) => readFileSync(f, "utf8").includes("VAULT_RENDER_TEST_"))).toEqual([]);
  });

  it("the production bin ignores VAULT_RENDER_TEST_NOW_OFFSET; the hooks entry honours it", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "pw-1" });
    expect((await t.run(["sync"], { mode: "child" })).code).toBe(0);
    const args = ["--layout", t.layoutFile, "check", "--offline", "--max-age", "1h", "--json"];
    const at = { VAULT_RENDER_TEST_NOW_OFFSET: "7200" };
    const maxAge = (stdout: string) => (JSON.parse(stdout) as { findings: Array<{ check: string; severity: string }> }).findings.find((f) => f.check === "max-age")?.severity;
    const prod = await runCli(args, { cwd: t.dir, env: at, entry: "bin" });
    expect({ code: prod.code, age: maxAge(prod.stdout) }).toEqual({ code: 0, age: "ok" });
    // Not vacuous: two hours later, as the hooks entry sees it, the last sync is too old.
    const hooked = await runCli(args, { cwd: t.dir, env: at, entry: "hooks" });
    expect({ code: hooked.code, age: maxAge(hooked.stdout) }).toEqual({ code: 1, age: "error" });
  });
});
