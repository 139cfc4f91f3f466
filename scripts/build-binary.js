// `npm run build:binary`: vault-render as one executable file (Node's single executable
// application), dist-bin/vault-render, that runs with no Node installation and no node_modules.
// 1. esbuild.config.mjs --sea: the CLI in one CommonJS script (dist-bin/vault-render.cjs);
// 2. node --experimental-sea-config: the preparation blob (with V8's code cache, no warning);
// 3. a copy of this node binary, the blob injected with postject (the sentinel fuse flips on).
// The blob and the executable must come from the same Node version: this one, process.execPath.
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
// `--out <dir>` (the tests build into a temp dir); dist-bin/ (git-ignored) by default.
const at = process.argv.indexOf("--out");
const out = at > 0 && process.argv[at + 1] ? path.resolve(process.argv[at + 1]) : path.join(root, "dist-bin");
const exe = path.join(out, "vault-render");
const blob = path.join(out, "sea-prep.blob");
const config = path.join(out, "sea-config.json");
// Node's sentinel for the SEA resource (the docs' value; fixed for every Node version).
const FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

function run(args) {
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: "inherit" });
  if (r.status !== 0) throw new Error(`build-binary: node ${args.join(" ")} exited ${r.status ?? r.signal}`);
}

run([path.join(root, "esbuild.config.mjs"), "--sea", "--out", out]);
writeFileSync(config, JSON.stringify({ main: path.join(out, "vault-render.cjs"), output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }, null, 2) + "\n");
run(["--experimental-sea-config", config]);

rmSync(exe, { force: true });
copyFileSync(process.execPath, exe);
chmodSync(exe, 0o755);
// postject is CommonJS; require() also finds it through NODE_PATH (a checkout whose node_modules lacks it).
const require = createRequire(import.meta.url);
const { inject } = require("postject");
await inject(exe, "NODE_SEA_BLOB", readFileSync(blob), { sentinelFuse: FUSE });
rmSync(blob, { force: true });
rmSync(config, { force: true });
// The licences of what the bundle carries (written by `npm run build`, which build:binary runs first),
// beside the binary; the binary also carries Node.js itself (MIT, https://github.com/nodejs/node/blob/main/LICENSE).
const licences = path.join(root, "dist", "THIRD-PARTY-LICENSES.txt");
if (existsSync(licences)) copyFileSync(licences, path.join(out, "THIRD-PARTY-LICENSES.txt"));
process.stdout.write(`build-binary: ${exe} (${(statSync(exe).size / 1048576).toFixed(1)} MiB, node ${process.version})\n`);
