// The floor: the fastest honest hand-written Node script for the work a sync cannot avoid, against
// the same layout and the same Vault double as vault-render. No validation, no state, no lock, no
// logging, no retries: node built-ins only, callback fs (no FileHandle objects), one keep-alive
// agent, and every stage as wide as vault-render's reads (`vault.concurrency`, default 8).
//
//   node bench/floor.js <layout.json> noop|cold        (VAULT_ADDR points at the double)
//
// noop: read the cached token, one lookup-self, GET every unique KV v2 source `concurrency` at a
//       time, then for each output: render, open the existing file, check its mode, read every
//       byte of it (plus one to see that it does not go on), compare — synchronously, the fastest
//       way for small cached files (docs/benchmarks.md). Exit 1 if any file differs.
// cold: AppRole login, write the token (atomic, 0600, fsync, dir fsync), GET every source, then
//       `concurrency` outputs at a time: mkdir (once per directory), temp file O_EXCL 0600, write
//       every byte, fchmod 0644, fsync, close, rename; at the end one fsync per directory that got a
//       new entry (each output directory, and the parent of every directory created), also
//       `concurrency` at a time.
// The bench (bench/run.js) checks that a cold floor run leaves a public/ tree byte- and
// mode-identical to vault-render's. It supports exactly the subset the benchmark layouts use: kv
// sources on a v2 mount, env (portable dialect), raw and json outputs with `keys` / `value`.
import fs, { constants as C, readFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { randomBytes } from "node:crypto";

const [layoutFile, mode] = process.argv.slice(2);
if (mode !== "noop" && mode !== "cold") throw new Error("usage: node bench/floor.js <layout.json> noop|cold");
const layout = JSON.parse(readFileSync(layoutFile, "utf8"));
const dir = path.dirname(path.resolve(layoutFile));
const publicDir = path.join(dir, layout.paths?.public ?? "public");
const agentDir = path.join(dir, layout.paths?.agentOnly ?? "agent-only");
const concurrency = layout.vault?.concurrency ?? 8;
const base = new URL(process.env.VAULT_ADDR);
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
const DIR_MODE = 0o755;
const FILE_MODE = 0o644;
const umaskHidesDirBits = (DIR_MODE & ~process.umask()) !== DIR_MODE;

/** A callback fs call as a promise (cheaper than fs/promises' FileHandle objects). */
const call = (fn, ...args) => new Promise((resolve, reject) => fn(...args, (e, r) => (e ? reject(e) : resolve(r))));

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
      await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

async function writeAtomic(file, bytes, fileMode) {
  const tmp = path.join(path.dirname(file), `.floor.tmp-${process.pid}-${randomBytes(6).toString("hex")}`);
  const fd = await call(fs.open, tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
  try {
    let off = 0;
    while (off < bytes.length) off += await call(fs.write, fd, bytes, off, bytes.length - off, off);
    await call(fs.fchmod, fd, fileMode);
    await call(fs.fsync, fd);
  } finally {
    await call(fs.close, fd);
  }
  await call(fs.rename, tmp, file);
}

async function fsyncDir(d) {
  const fd = await call(fs.open, d, C.O_RDONLY | C.O_DIRECTORY);
  try {
    await call(fs.fsync, fd);
  } finally {
    await call(fs.close, fd);
  }
}

/**
 * Whether `file` holds exactly `bytes` at mode 0644: reads all of it (and one byte more, to see
 * EOF), and its mode (vault-render rewrites a file whose mode drifted, so it must look). Plain
 * synchronous calls: for small files in the page cache they cost about a quarter of the
 * thread-pool round trips of the async API (docs/benchmarks.md), and nothing else is in flight.
 */
function sameBytes(file, bytes) {
  let fd;
  try {
    fd = fs.openSync(file, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
  } catch {
    return false;
  }
  try {
    if ((fs.fstatSync(fd).mode & 0o7777) !== FILE_MODE) return false;
    const buf = Buffer.allocUnsafe(bytes.length + 1);
    let off = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, off, buf.length - off, null);
      if (n === 0) break;
      off += n;
      if (off === buf.length) return false; // longer than expected
    }
    return off === bytes.length && buf.subarray(0, off).equals(bytes);
  } finally {
    fs.closeSync(fd);
  }
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
agent.destroy();

let differing = 0;
if (mode === "noop") {
  for (const o of layout.outputs) if (!sameBytes(path.join(publicDir, o.file), render(o, data))) differing++;
} else {
  /** Directory → its mkdir (one per directory, shared by the outputs in it). */
  const made = new Map();
  const toSync = new Set();
  const ensureDir = (d) => {
    let p = made.get(d);
    if (!p) {
      p = call(fs.mkdir, d, { recursive: true, mode: DIR_MODE }).then(async (first) => {
        if (first === undefined) return;
        // Every directory from `first` down to `d` is new: its parent got an entry.
        toSync.add(path.dirname(first));
        if (umaskHidesDirBits) for (let x = d; x.length >= first.length; x = path.dirname(x)) await call(fs.chmod, x, DIR_MODE);
      });
      made.set(d, p);
    }
    return p;
  };
  await mapLimit(layout.outputs, concurrency, async (o) => {
    const file = path.join(publicDir, o.file);
    const d = path.dirname(file);
    await ensureDir(d);
    await writeAtomic(file, render(o, data), FILE_MODE);
    toSync.add(d);
  });
  await mapLimit([...toSync], concurrency, fsyncDir);
}
// The driver checks that the floor rendered exactly vault-render's bytes.
if (differing) process.stderr.write(`floor: ${differing} files differ from vault-render's\n`);
process.exitCode = differing ? 1 : 0;
