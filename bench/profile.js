// `node bench/profile.js [N] [noop|cold]`: one vault-render sync of N outputs under --cpu-prof
// (after `npm run build`), then the functions with the most self time. Used to find what to fix.
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startVaultDouble } from "../dist/double/vault-double.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const n = Number(process.argv[2] ?? 1000);
const mode = process.argv[3] ?? "noop";
const double = await startVaultDouble();
double.mountKv("secret", 2);
double.addPolicy("bench", `path "secret/data/*" { capabilities = ["read"] }\n`);
const { roleId } = double.addAppRole({ roleName: "bench", policies: ["bench"], tokenTtl: 86400 });
const { secretId } = double.generateSecretId("bench");
const dir = await mkdtemp(path.join(os.tmpdir(), "vr-prof-"));
await mkdir(path.join(dir, "agent-only/approle"), { recursive: true, mode: 0o700 });
await writeFile(path.join(dir, "agent-only/approle/role_id"), roleId + "\n");
await writeFile(path.join(dir, "agent-only/approle/secret_id"), secretId + "\n");
const sources = {};
const outputs = [];
const S = Math.ceil(n / 2);
for (let j = 0; j < S; j++) {
  double.kvPut("secret", `bench/s${j}`, { user: `user${j}`, password: `pw${j}`, host: `db${j}` });
  sources[`s${j}`] = { type: "kv", mount: "secret", path: `bench/s${j}`, kvVersion: 2 };
}
for (let i = 0; i < n; i++) {
  const s = `s${i % S}`;
  const d = `app${Math.floor(i / 10)}`;
  if (i % 3 === 0) outputs.push({ file: `${d}/out${i}.env`, format: "env", keys: { DB_USER: `${s}.user`, DB_PASSWORD: `${s}.password` } });
  else if (i % 3 === 1) outputs.push({ file: `${d}/out${i}.pw`, format: "raw", value: `${s}.password` });
  else outputs.push({ file: `${d}/out${i}.json`, format: "json", keys: { user: `${s}.user`, host: `${s}.host` } });
}
const layoutFile = path.join(dir, "vault-layout.json");
await writeFile(layoutFile, JSON.stringify({ version: 1, auth: { approle: { roleIdFile: "approle/role_id", secretIdFile: "approle/secret_id" } }, sources, outputs }));
const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("VAULT_"))), VAULT_ADDR: double.url };
const UNBUNDLED = process.argv.includes("--unbundled");
const target = UNBUNDLED ? [path.join(ROOT, "bench/unbundled-sync.js"), layoutFile] : [path.join(ROOT, "bin/vault-render.js"), "--layout", layoutFile, "sync"];
const sync = (extra) =>
  new Promise((resolve) => spawn(process.execPath, [...extra, ...target], { cwd: dir, env, stdio: "inherit" }).on("close", resolve));
if (mode === "noop") await sync([]);
const profDir = path.join(dir, "prof");
await sync(["--cpu-prof", "--cpu-prof-dir", profDir, "--cpu-prof-interval", "200"]);
const prof = JSON.parse(await readFile(path.join(profDir, (await readdir(profDir))[0]), "utf8"));
const self = new Map();
const dt = prof.timeDeltas;
const byId = new Map(prof.nodes.map((nd) => [nd.id, nd]));
prof.samples.forEach((id, i) => {
  const f = byId.get(id).callFrame;
  const key = `${f.functionName || "(anon)"} ${f.url.replace(/^.*\/(node_modules|dist)\//, "$1/")}:${f.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + (dt[i] ?? 0) / 1000);
});
const parent = new Map();
for (const nd of prof.nodes) for (const c of nd.children ?? []) parent.set(c, nd.id);
const stacks = new Map();
const want = (process.env.STACK_OF ?? "").split(",").filter(Boolean);
prof.samples.forEach((id, i) => {
  const f = byId.get(id).callFrame;
  if (!want.some((w) => f.functionName === w)) return;
  const chain = [];
  for (let p = parent.get(id); p !== undefined && chain.length < 8; p = parent.get(p)) {
    const c = byId.get(p).callFrame;
    chain.push(`${c.functionName || "(anon)"}@${c.url.replace(/^.*\//, "")}:${c.lineNumber + 1}`);
  }
  const k = `${f.functionName} <- ${chain.join(" <- ")}`;
  stacks.set(k, (stacks.get(k) ?? 0) + (dt[i] ?? 0) / 1000);
});
for (const [k, ms] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, 8)) console.log(`${ms.toFixed(1).padStart(8)} ms  ${k}`);
const byPkg = new Map();
prof.samples.forEach((id, i) => {
  const u = byId.get(id).callFrame.url;
  const m = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(u);
  const k = m ? m[1] : u.includes("/dist/") ? u.replace(/^.*\/dist\//, "dist/") : u.startsWith("node:") ? "node internals" : "(native/gc/idle)";
  byPkg.set(k, (byPkg.get(k) ?? 0) + (dt[i] ?? 0) / 1000);
});
console.log("by package / file:");
for (const [k, ms] of [...byPkg].sort((a, b) => b[1] - a[1]).slice(0, 16)) console.log(`${ms.toFixed(1).padStart(8)} ms  ${k}`);
const total = [...self.values()].reduce((a, b) => a + b, 0);
console.log(`profile of ${mode} sync, ${n} outputs: ${total.toFixed(0)} ms sampled`);
for (const [k, ms] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`${ms.toFixed(1).padStart(8)} ms  ${k}`);
await double.close();
if (!process.argv.includes("--keep")) await rm(dir, { recursive: true, force: true });
else console.log(`kept ${dir}`);
