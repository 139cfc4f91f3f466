// The floor: a minimal hand-written Node script doing only the work a sync cannot avoid, against the
// same layout and the same Vault double as vault-render. No validation, no state, no lock, no
// logging, no retries: node built-ins only.
//
//   node bench/floor.js <layout.json> noop|cold        (VAULT_ADDR points at the double)
//
// noop: read the cached token, one lookup-self, GET every unique KV v2 source (same concurrency as
//       vault-render's default, vault.concurrency), render, read each existing file, compare bytes.
// cold: AppRole login, write the token (atomic, 0600, fsync, dir fsync), GET every source, render,
//       then for every file: mkdir, temp file O_EXCL 0600, write, fchmod 0644, fsync, rename;
//       one directory fsync per directory at the end.
// It supports exactly the subset the benchmark layouts use: kv sources on a v2 mount, env
// (portable dialect), raw and json outputs with `keys` / `value`.
import { constants as C, readFileSync } from "node:fs";
import { mkdir, open, readFile, rename } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { randomBytes } from "node:crypto";

const [layoutFile, mode] = process.argv.slice(2);
const layout = JSON.parse(readFileSync(layoutFile, "utf8"));
const dir = path.dirname(path.resolve(layoutFile));
const publicDir = path.join(dir, layout.paths?.public ?? "public");
const agentDir = path.join(dir, layout.paths?.agentOnly ?? "agent-only");
const concurrency = layout.vault?.concurrency ?? 8;
const base = new URL(process.env.VAULT_ADDR);
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });

function request(method, p, token, body) {
  return new Promise((resolve, reject) => {
    const payload = body ? JSON.stringify(body) : undefined;
    const headers = { accept: "application/json" };
    if (token) headers["x-vault-token"] = token;
    if (payload) Object.assign(headers, { "content-type": "application/json", "content-length": Buffer.byteLength(payload) });
    const req = http.request({ host: base.hostname, port: base.port, method, path: `/v1/${p}`, headers, agent }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        if (res.statusCode !== 200) return reject(new Error(`${method} ${p}: HTTP ${res.statusCode}`));
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      });
    });
    req.on("error", reject);
    req.end(payload);
  });
}

async function mapLimit(items, limit, fn) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

async function writeAtomic(file, bytes, fileMode) {
  const tmp = path.join(path.dirname(file), `.floor.tmp-${process.pid}-${randomBytes(6).toString("hex")}`);
  const fh = await open(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
  try {
    await fh.write(bytes, 0, bytes.length, 0);
    await fh.chmod(fileMode);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}

async function fsyncDir(d) {
  const fh = await open(d, C.O_RDONLY | C.O_DIRECTORY);
  await fh.sync();
  await fh.close();
}

const str = (v) => (typeof v === "string" ? v : JSON.stringify(v));
function lookup(data, ref) {
  const dot = ref.indexOf(".");
  return data.get(ref.slice(0, dot))[ref.slice(dot + 1)];
}
function render(o, data) {
  if (o.format === "raw") return Buffer.from(str(lookup(data, o.value)));
  if (o.format === "env") {
    let s = "";
    for (const [k, ref] of Object.entries(o.keys)) s += `${k}='${str(lookup(data, ref))}'\n`;
    return Buffer.from(s);
  }
  const obj = {};
  for (const [k, ref] of Object.entries(o.keys)) obj[k] = lookup(data, ref);
  return Buffer.from(JSON.stringify(obj, null, 2) + "\n");
}

let token;
if (mode === "cold") {
  const roleId = readFileSync(path.join(agentDir, layout.auth.approle.roleIdFile), "utf8").trim();
  const secretId = readFileSync(path.join(agentDir, layout.auth.approle.secretIdFile), "utf8").trim();
  token = (await request("POST", "auth/approle/login", null, { role_id: roleId, secret_id: secretId })).auth.client_token;
  await writeAtomic(path.join(agentDir, "token"), Buffer.from(token + "\n"), 0o600);
  await fsyncDir(agentDir);
} else {
  token = readFileSync(path.join(agentDir, "token"), "utf8").trim();
  await request("GET", "auth/token/lookup-self", token);
}

const data = new Map();
await mapLimit(Object.entries(layout.sources), concurrency, async ([name, s]) => {
  data.set(name, (await request("GET", `${s.mount}/data/${s.path}`, token)).data.data);
});

let differing = 0;
const dirs = new Set();
for (const o of layout.outputs) {
  const bytes = render(o, data);
  const file = path.join(publicDir, o.file);
  if (mode === "cold") {
    const d = path.dirname(file);
    if (!dirs.has(d)) {
      await mkdir(d, { recursive: true, mode: 0o755 });
      dirs.add(d);
    }
    await writeAtomic(file, bytes, 0o644);
  } else {
    const current = await readFile(file).catch(() => null);
    if (!current || !current.equals(bytes)) differing++;
  }
}
for (const d of dirs) await fsyncDir(d);
if (mode === "cold") await fsyncDir(publicDir);
agent.destroy();
// The driver checks that the floor rendered exactly vault-render's bytes.
if (differing) process.stderr.write(`floor: ${differing} files differ from vault-render's\n`);
process.exitCode = differing ? 1 : 0;
