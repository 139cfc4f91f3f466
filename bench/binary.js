// Start-up of the single executable against the bundle (docs/benchmarks.md, "The single
// executable"): `--version`, `status` and a no-op `sync` of a 10-output layout against the Vault
// double, run by `dist-bin/vault-render` and by `node bin/vault-render.js` in turn (the order
// flipping every round), wall time from spawn to exit; prints the medians and min–max.
//   npm run build:binary && node bench/binary.js [--runs 21] [--exe dist-bin/vault-render]
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startVaultDouble } from "../dist/double/vault-double.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt;
};
const RUNS = Number(arg("--runs", "21"));
const EXE = path.resolve(arg("--exe", path.join(ROOT, "dist-bin", "vault-render")));

const double = await startVaultDouble();
double.mountKv("secret", 2);
double.addPolicy("bench", `path "secret/data/*" { capabilities = ["read"] }\n`);
const { roleId } = double.addAppRole({ roleName: "bench", policies: ["bench"], tokenTtl: 24 * 3600, tokenMaxTtl: 7 * 24 * 3600 });
const { secretId } = double.generateSecretId("bench");
const outputs = [];
for (let i = 0; i < 10; i++) {
  double.kvPut("secret", `bench/s${i}`, { password: `pw-${i}` });
  outputs.push({ file: `app/out${i}.env`, format: "env", keys: { PASSWORD: `s${i}.password` } });
}
const sources = Object.fromEntries(outputs.map((_, i) => [`s${i}`, { type: "kv", mount: "secret", path: `bench/s${i}`, kvVersion: 2 }]));
const dir = await mkdtemp(path.join(os.tmpdir(), "vr-bench-bin-"));
await mkdir(path.join(dir, "agent-only", "approle"), { recursive: true, mode: 0o700 });
await writeFile(path.join(dir, "agent-only", "approle", "role_id"), roleId + "\n", { mode: 0o600 });
await writeFile(path.join(dir, "agent-only", "approle", "secret_id"), secretId + "\n", { mode: 0o600 });
const layout = path.join(dir, "vault-layout.json");
await writeFile(layout, JSON.stringify({ version: 1, auth: { approle: { roleIdFile: "approle/role_id", secretIdFile: "approle/secret_id" } }, sources, outputs }));

const env = { PATH: process.env.PATH ?? "", HOME: dir, NO_COLOR: "1", VAULT_ADDR: double.url };
const programs = { binary: [EXE], bundle: [process.execPath, path.join(ROOT, "bin", "vault-render.js")] };
const scenarios = { "--version": ["--version"], status: ["--layout", layout, "status"], "no-op sync": ["--layout", layout, "sync"] };

function time([cmd, ...pre], args) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, [...pre, ...args], { cwd: dir, env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(Number(process.hrtime.bigint() - t0) / 1e6) : reject(new Error(`${cmd} ${args.join(" ")} exited ${code}: ${stderr.slice(0, 300)}`))));
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
try {
  for (const p of Object.values(programs)) await time(p, scenarios["no-op sync"]); // first sync: login, writes
  console.log(`${RUNS} interleaved runs each; node ${process.version}; ${os.cpus().length} CPUs`);
  console.log("| command | bundle (node bin/vault-render.js) | single executable | ratio |\n|---|---|---|---|");
  for (const [name, args] of Object.entries(scenarios)) {
    const ms = { binary: [], bundle: [] };
    for (let r = 0; r < RUNS; r++) {
      const order = r % 2 === 0 ? ["bundle", "binary"] : ["binary", "bundle"];
      for (const p of order) ms[p].push(await time(programs[p], args));
    }
    const cell = (xs) => `${median(xs).toFixed(1)} ms (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)})`;
    console.log(`| \`${name}\` | ${cell(ms.bundle)} | ${cell(ms.binary)} | ${(median(ms.binary) / median(ms.bundle)).toFixed(2)}x |`);
  }
} finally {
  await double.close();
  await rm(dir, { recursive: true, force: true });
}
