/**
 * What the built CLI carries and loads: node-vault rides on our transport, so axios (and what it
 * drags in: form-data, follow-redirects, proxy-from-env, Node's bundled undici) is neither in the
 * bundle's module graph nor loaded by a run, and the stubs that stand in for it (and for
 * node-vault's load-time debug and tv4) are never touched: each throws on use, and a sync that
 * logs in, reads KV, issues a certificate and reads leased credentials succeeds.
 */
import { readFileSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { baseLayout, PKI_LEASE_RULES, ROOT, trackedTrees } from "./helpers.js";

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
    const sync = await t.run(["sync"], { env });
    expect({ code: sync.code, stderr: sync.stderr }).toEqual({ code: 0, stderr: "" });
    expect(await readFile(path.join(t.publicDir, "app.env"), "utf8")).toContain("DB_PASSWORD='pw-1'");
    const check = await t.run(["check"], { env });
    expect({ code: check.code, out: check.stdout }).toEqual({ code: 0, out: expect.any(String) });
    for (const run of ["sync", "check"]) {
      const loaded = (await readFile(`${env.VR_MODULES_FILE}.${run}`, "utf8")).split("\n");
      // The list is real: the http client and TLS were loaded.
      expect(loaded).toContain("NativeModule _http_client");
      expect(loaded.filter((m) => /undici|axios/i.test(m))).toEqual([]);
    }
  }, 60_000);
});
