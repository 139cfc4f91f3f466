// Bundle the CLI after `tsc` (see package.json "build"): one small entry chunk (commander, the command
// registrations) plus lazily loaded chunks for what each command needs (zod, pino, node-vault/axios).
// A cron run that has nothing to do pays for far fewer module loads than the unbundled dist/ tree.
// tsc's per-file output in dist/ stays (the Vault double, scripts and tests import it); only
// dist/cli.js is replaced by the bundle's entry, and the chunks live in dist/chunks/.
//
// Also writes dist/vault-layout.schema.json (the exact bytes `vault-render schema` prints, generated
// from the zod schema just compiled), so `schema` can print it without loading zod.
import { build } from "esbuild";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(root, "dist");

// src/core/vault/client.ts patches axios.defaults through `createRequire(import.meta.url)("axios")`,
// and node-vault does `require("axios")`. Once node-vault is bundled, both must reach the SAME axios
// module instance, so the client's createRequire is routed through a shim that hands out the bundled
// axios (the CommonJS build node-vault itself gets) and defers to the real createRequire otherwise.
const axiosShim = {
  name: "shared-axios",
  setup(b) {
    b.onResolve({ filter: /^(node:)?module$/ }, (args) => {
      if (args.namespace === "file" && /src[\\/]core[\\/]vault[\\/]/.test(args.importer)) return { path: "module-shim", namespace: "vr-shim" };
      return undefined;
    });
    b.onLoad({ filter: /^module-shim$/, namespace: "vr-shim" }, () => ({
      resolveDir: root,
      loader: "js",
      contents: `
        const real = require("node:module");
        const axios = require("axios");
        exports.createRequire = (from) => {
          const req = real.createRequire(from);
          const shared = (id) => (id === "axios" ? axios : req(id));
          shared.resolve = req.resolve;
          return shared;
        };
      `,
    }));
  },
};

// Start-up weight that the CLI never uses, cut at bundle time (the source is untouched; each cut is
// measured in docs/benchmarks.md). A patch whose target text is gone only warns: the bundle then
// simply keeps that weight.
const trims = {
  name: "startup-trims",
  setup(b) {
    // zod/v4 (classic, mini and core) re-exports every locale (~290 KB of the bundle) as `z.locales`;
    // only `en` (which src/core/zod.ts installs) is used.
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /zod[\\/]v4[\\/](classic|mini|core)[\\/]/.test(args.importer) ? { path: path.join(path.dirname(args.importer), "../locales/en.js"), namespace: "vr-zod-locales" } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "vr-zod-locales" }, (args) => ({
      resolveDir: path.dirname(args.path),
      contents: `export { default as en } from ${JSON.stringify(args.path)};`,
    }));
    // axios requires the form-data package (with mime-types and the 130 KB mime-db) for multipart
    // bodies; node-vault only sends JSON. With null, axios falls back to the global FormData.
    b.onResolve({ filter: /^form-data$/ }, () => ({ path: "form-data", namespace: "vr-null" }));
    b.onLoad({ filter: /.*/, namespace: "vr-null" }, () => ({ contents: "module.exports = null;", loader: "js" }));
    // axios seeds its fetch-adapter cache at load time, which touches globalThis.Request and so
    // loads Node's bundled undici (15-40 ms). On Node the http adapter is chosen first; the fetch
    // adapter is still built on demand if ever selected.
    b.onLoad({ filter: /axios[\\/]dist[\\/]node[\\/]axios\.cjs$/ }, async (args) => {
      const text = readFileSync(args.path, "utf8");
      const patched = text.replace(/\ngetFetch\(\);\n/, "\n");
      return { contents: patched, loader: "js", warnings: patched === text ? [{ text: "axios: getFetch() seed not found; undici will load at start-up" }] : [] };
    });
  },
};

rmSync(path.join(dist, "chunks"), { recursive: true, force: true });

await build({
  entryPoints: { cli: path.join(root, "src/cli.ts") },
  outdir: dist,
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  // Prefer the CommonJS build of dual packages (axios): the one node-vault's require() gets.
  mainFields: ["module", "main"],
  // Identifiers stay readable for --debug stack traces; whitespace/syntax minification is enough.
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: "none",
  logLevel: "warning",
  plugins: [axiosShim, trims],
  banner: {
    // CommonJS dependencies inside an ESM bundle still call require() for node built-ins.
    js: 'import { createRequire as __vrCreateRequire } from "node:module"; const require = __vrCreateRequire(import.meta.url);',
  },
  // dist/cli.js lives beside package.json's "../package.json" exactly as tsc's output did.
  external: ["../package.json"],
});

// The schema, from the zod schema tsc just compiled (byte-identical to `vault-render schema`).
const { layoutJsonSchema } = await import(pathToFileURL(path.join(dist, "core/layout/schema.js")).href);
writeFileSync(path.join(dist, "vault-layout.schema.json"), JSON.stringify(layoutJsonSchema(), null, 2) + "\n");
