// Bundle the CLI after `tsc` (see package.json "build"): one small entry chunk (commander, the command
// registrations) plus lazily loaded chunks for what each command needs (zod, pino, node-vault).
// A cron run that has nothing to do pays for far fewer module loads than the unbundled dist/ tree.
// tsc's per-file output in dist/ stays (the Vault double, scripts and tests import it); only
// dist/cli.js is replaced by the bundle's entry, and the chunks live in dist/chunks/.
//
// Also writes dist/vault-layout.schema.json (the exact bytes `vault-render schema` prints, generated
// from the zod schema just compiled), so `schema` can print it without loading zod.
//
// `node esbuild.config.mjs --sea [--out <dir>]` (after the build above; `npm run build:binary`) builds instead the
// main script of the single executable (scripts/build-binary.js): dist-bin/vault-render.cjs, the bin
// shim and the whole CLI in one CommonJS file with no chunks, since Node 20's single executable runs
// one CommonJS script whose require() reaches built-ins only.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(root, "dist");

// node-vault does `require("axios")` at load time but, given our transport as its
// `request-promise` (src/core/vault/transport.ts), never uses it. The bundle gets, instead of axios
// (and its form-data, proxy-from-env, follow-redirects and undici probe), a module that throws on
// any use; test/bundle.test.ts proves the graph holds no axios and that a sync never touches it.
const noAxios = {
  name: "no-axios",
  setup(b) {
    b.onResolve({ filter: /^axios$/ }, () => ({ path: "axios", namespace: "vr-no-axios" }));
    b.onLoad({ filter: /.*/, namespace: "vr-no-axios" }, () => ({
      loader: "js",
      contents: `
        const refuse = (what) => { throw new Error("vault-render: axios is not in this build (" + String(what) + " used); node-vault must ride on src/core/vault/transport.ts"); };
        module.exports = new Proxy({}, { get: (_, key) => (typeof key === "symbol" ? undefined : refuse(key)) });
      `,
    }));
  },
};

// Start-up weight that the CLI never uses, cut at bundle time (the source is untouched; each cut is
// measured in docs/benchmarks.md). A patch whose target is gone fails the build (`trimHits`), so a
// dependency update can never silently bring the weight back.
const trimHits = { "zod locales": 0, "node-vault debug": 0, "node-vault tv4": 0 };
const trims = {
  name: "startup-trims",
  setup(b) {
    // zod/v4 (classic, mini and core) re-exports every locale (~290 KB of the bundle) as `z.locales`;
    // only `en` (which src/core/support/zod.ts installs) is used.
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) => {
      if (!/zod[\\/]v4[\\/](classic|mini|core)[\\/]/.test(args.importer)) return undefined;
      trimHits["zod locales"]++;
      return { path: path.join(path.dirname(args.importer), "../locales/en.js"), namespace: "vr-zod-locales" };
    });
    b.onLoad({ filter: /.*/, namespace: "vr-zod-locales" }, (args) => ({
      resolveDir: path.dirname(args.path),
      contents: `export { default as en } from ${JSON.stringify(args.path)};`,
    }));
    // node-vault requires `debug` (with ms, supports-color, has-flag) and `tv4` at load time; it is
    // given its `debug` and `tv4` in its config (src/core/vault/client.ts), so the bundle gets a
    // silent debug factory and a tv4 that throws if anything ever reaches it.
    b.onResolve({ filter: /^(debug|tv4)$/ }, (args) => {
      if (!/node_modules[\\/]node-vault[\\/]/.test(args.importer)) return undefined;
      trimHits[`node-vault ${args.path}`]++;
      return { path: args.path, namespace: "vr-node-vault-stub" };
    });
    b.onLoad({ filter: /.*/, namespace: "vr-node-vault-stub" }, (args) => ({
      loader: "js",
      contents:
        args.path === "debug"
          ? `module.exports = () => Object.assign(() => undefined, { enabled: false });`
          : `module.exports = new Proxy({}, { get: (_, key) => { if (typeof key === "symbol") return undefined; throw new Error("vault-render: tv4 is not in this build (" + String(key) + " used); node-vault is given its own tv4"); } });`,
    }));
  },
};

// The options both builds share.
const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  // Prefer the CommonJS build of dual packages: the one a CommonJS dependency's require() gets.
  mainFields: ["module", "main"],
  // Identifiers stay readable for --debug stack traces; whitespace/syntax minification is enough.
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: "none",
  logLevel: "warning",
  plugins: [noAxios, trims],
};

function checkTrims() {
  for (const [name, hits] of Object.entries(trimHits)) {
    if (hits === 0) throw new Error(`esbuild.config.mjs: the bundle-time patch "${name}" found nothing to patch (a dependency changed); update or drop it`);
  }
}

if (process.argv.includes("--sea")) {
  await buildSeaMain();
} else {
  await buildBundle();
}

/**
 * The single executable's main script. The shim's `../dist/cli.js` is src/cli.ts itself, and
 * src/build-info.ts (which reads package.json and the schema beside the bundle) becomes the two
 * literals; `import.meta.url` (the layout memo's code identity, src/core/layout/load.ts) is the
 * executable's own file, whose size and mtime any rebuild changes.
 */
async function buildSeaMain() {
  const { version } = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
  const schema = readFileSync(path.join(dist, "vault-layout.schema.json"), "utf8");
  const seaSources = {
    name: "sea-sources",
    setup(b) {
      b.onResolve({ filter: /^\.\.\/dist\/cli\.js$/ }, (args) => (/[\\/]bin[\\/]vault-render\.js$/.test(args.importer) ? { path: path.join(root, "src/cli.ts") } : undefined));
      b.onResolve({ filter: /^\.\/build-info\.js$/ }, () => ({ path: "build-info", namespace: "vr-sea-build-info" }));
      b.onLoad({ filter: /.*/, namespace: "vr-sea-build-info" }, () => ({
        loader: "js",
        contents: `export const version = ${JSON.stringify(version)};\nexport function precomputedSchema() { return ${JSON.stringify(schema)}; }\n`,
      }));
    },
  };
  const at = process.argv.indexOf("--out");
  const out = at > 0 && process.argv[at + 1] ? path.resolve(process.argv[at + 1]) : path.join(root, "dist-bin");
  mkdirSync(out, { recursive: true });
  await build({
    ...common,
    entryPoints: [path.join(root, "bin/vault-render.js")],
    outfile: path.join(out, "vault-render.cjs"),
    format: "cjs",
    splitting: false,
    plugins: [seaSources, ...common.plugins],
    define: { "import.meta.url": "__vrSelfUrl" },
    banner: { js: 'const __vrSelfUrl = require("node:url").pathToFileURL(__filename).href;' },
  });
  checkTrims();
}

async function buildBundle() {
  rmSync(path.join(dist, "chunks"), { recursive: true, force: true });

  const result = await build({
    entryPoints: { cli: path.join(root, "src/cli.ts") },
    ...common,
    outdir: dist,
    chunkNames: "chunks/[name]-[hash]",
    splitting: true,
    format: "esm",
    metafile: true,
    banner: {
      // CommonJS dependencies inside an ESM bundle still call require() for node built-ins.
      js: 'import { createRequire as __vrCreateRequire } from "node:module"; const require = __vrCreateRequire(import.meta.url);',
    },
    // dist/cli.js lives beside package.json's "../package.json" exactly as tsc's output did.
    external: ["../package.json"],
  });

  checkTrims();
  // The module graph, for the test that proves what the bundle does not contain.
  writeFileSync(path.join(dist, "bundle-inputs.json"), JSON.stringify(Object.keys(result.metafile.inputs).sort(), null, 2) + "\n");
  // The package ships its dependencies inside the bundle: their licences ship with it.
  writeFileSync(path.join(dist, "THIRD-PARTY-LICENSES.txt"), thirdPartyLicenses(Object.keys(result.metafile.inputs)));

  // `import` parses HCL with @cdktf/hcl2json's WebAssembly module, which src/core/import/hcl.ts
  // looks for beside the chunks (dist/hcl2json.wasm.gz) when the bundle runs without node_modules.
  const hcl2json = path.dirname(createRequire(import.meta.url).resolve("@cdktf/hcl2json/package.json"));
  copyFileSync(path.join(hcl2json, "main.wasm.gz"), path.join(dist, "hcl2json.wasm.gz"));

  // The schema, from the zod schema tsc just compiled (byte-identical to `vault-render schema`).
  const { layoutJsonSchema } = await import(pathToFileURL(path.join(dist, "core/layout/schema.js")).href);
  writeFileSync(path.join(dist, "vault-layout.schema.json"), JSON.stringify(layoutJsonSchema(), null, 2) + "\n");
}

/** For a package published without a licence file: what it states instead (package.json, file headers). A function: the build runs before later consts exist. */
function licenceNote(name) {
  if (name !== "@cdktf/hcl2json") return undefined;
  return (
    'Published under the Mozilla Public License, v. 2.0 (package.json "license": "MPL-2.0"; source headers: "SPDX-License-Identifier: MPL-2.0"); ' +
    "the licence text is at https://mozilla.org/MPL/2.0/ and the source is HashiCorp's terraform-cdk repository (packages/@cdktf/hcl2json).\n" +
    "dist/hcl2json.wasm.gz is this package's main.wasm.gz, unmodified. Its wasm/wasm_exec.js (bundled) says: " +
    '"Copyright 2021 The Go Authors. All rights reserved. Use of this source code is governed by a BSD-style license that can be found in the LICENSE file."'
  );
}

/** Every npm package in the bundle's module graph, with its version and the text of its licence file. */
function thirdPartyLicenses(inputs) {
  const dirs = new Set();
  for (const f of inputs) {
    // Plugin namespaces prefix some inputs (`vr-zod-locales:/abs/path`); paths are absolute or relative to the root.
    const file = path.resolve(root, f.replace(/^[a-z][a-z-]*:(?=\/)/, ""));
    const m = /^(.*\/node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(file);
    if (m) dirs.add(m[1]);
  }
  const parts = ["Third-party software bundled into dist/ (and the single executable), with its licence.\n"];
  for (const dir of [...dirs].sort()) {
    const pkg = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8"));
    const file = readdirSync(dir).find((n) => /^(licen[cs]e|copying)(\.|$)/i.test(n));
    const text = file ? readFileSync(path.join(dir, file), "utf8").trim() : (licenceNote(pkg.name) ?? `(no licence file; package.json says: ${pkg.license ?? "nothing"})`);
    parts.push(`${"=".repeat(78)}\n${pkg.name}@${pkg.version} (${pkg.license ?? "?"})\n${"=".repeat(78)}\n${text}\n`);
  }
  return parts.join("\n");
}
