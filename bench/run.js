// `npm run bench [-- --quick] [-- --no-doc] [-- --runs N] [-- --dir DIR]`
//
// Measures, on this machine and in this run, the built CLI (bin/vault-render.js) against
//   - `node -e 0` (start-up), and
//   - the floor (bench/floor.js): the same HTTP reads with the same concurrency against the same
//     Vault double, the same atomic writes 8 at a time, nothing else.
// Every scenario runs vault-render and the floor alternately (ABAB, the order flipping every
// round), several times, and takes medians; times are fitted as a + b·N (least squares) to
// separate fixed cost from cost per output. Each target is reported as the ratio of the medians
// with its spread: the min–max of the same ratio computed run by run (run i of vault-render against
// run i of the floor, which ran next to it). The bench fails if the floor's public/ tree is not
// byte- and mode-identical to vault-render's. The full run rewrites the results section of
// docs/benchmarks.md.
//
// The Vault double runs in THIS process; every measured program is an async child process.
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile, unlink } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startVaultDouble } from "../dist/double/vault-double.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BIN = path.join(ROOT, "bin", "vault-render.js");
const FLOOR = path.join(ROOT, "bench", "floor.js");
const RSS_HOOK = path.join(ROOT, "bench", "rss-hook.js");
const DOC = path.join(ROOT, "docs", "benchmarks.md");

const args = process.argv.slice(2);
const QUICK = args.includes("--quick");
const WRITE_DOC = !QUICK && !args.includes("--no-doc");
const argVal = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
/** Runs per point, the same at every N (the per-run fits need one time per N and run). */
const RUNS = Number(argVal("--runs") ?? (QUICK ? 3 : 7));
const STARTUP_RUNS = QUICK ? 7 : 25;
const RSS_RUNS = QUICK ? 1 : 3;
const NOOP_NS = QUICK ? [10, 100, 1000] : [10, 100, 1000, 5000];
const COLD_NS = [10, 100, 1000];
const RSS_N = NOOP_NS.at(-1);
const STATUS_N = 1000;
const LAT_SOURCES = 200;
const LAT_MS = 20;
const BASE_DIR = argVal("--dir") ?? os.tmpdir();

/** The targets of issue 11. */
const T = { perOutputNoop: 1.25, perOutputCold: 1.3, fixed: 1.0, latency: 1.1, status: 1.5, startup: 1.2, rss: 1.3 };
const log = (s) => process.stderr.write(`bench: ${s}\n`);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "n/a");
const spread = (xs, d = 2) => (xs.length ? `${fmt(Math.min(...xs), d)}–${fmt(Math.max(...xs), d)}` : "n/a");

// ---------------------------------------------------------------------------------------------
// Child processes

const childEnv = (extra = {}) => {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("VAULT_")) env[k] = v;
  return { ...env, NO_COLOR: "1", ...extra };
};

/** Run a program to completion; wall time in ms from spawn to exit. */
function run(argv, { cwd = ROOT, env = childEnv(), rssFile } = {}) {
  return new Promise((resolve, reject) => {
    const full = rssFile ? ["--import", RSS_HOOK, ...argv] : argv;
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, full, { cwd, env: rssFile ? { ...env, VR_BENCH_RSS_FILE: rssFile } : env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, code, stdout, stderr }));
  });
}

async function mustRun(argv, opts) {
  const r = await run(argv, opts);
  if (r.code !== 0) throw new Error(`${argv.map((a) => path.basename(a)).join(" ")} exited ${r.code}: ${r.stderr.trim().slice(0, 500)}`);
  return r;
}

async function peakRssMB(argv, opts) {
  const file = path.join(os.tmpdir(), `vr-bench-rss-${process.pid}-${Math.random().toString(36).slice(2)}`);
  await mustRun(argv, { ...opts, rssFile: file });
  const kb = Number(readFileSync(file, "utf8"));
  await unlink(file);
  return kb / 1024;
}

// ---------------------------------------------------------------------------------------------
// The double and the trees

const double = await startVaultDouble();
double.mountKv("secret", 2);
double.addPolicy("bench", `path "secret/data/*" { capabilities = ["read"] }\n`);
const { roleId } = double.addAppRole({ roleName: "bench", policies: ["bench"], tokenTtl: 24 * 3600, tokenMaxTtl: 7 * 24 * 3600 });
const sid = double.generateSecretId("bench");
const secretId = sid.secretId;
const kvWritten = new Set();
const kvPath = (prefix, j) => `bench/${prefix}${j}`;
function seedKv(prefix, count) {
  for (let j = 0; j < count; j++) {
    const p = kvPath(prefix, j);
    if (kvWritten.has(p)) continue;
    double.kvPut("secret", p, { user: `user${j}`, password: `pw${j}x${(j * 2654435761) % 1e9}`, host: `db${j}.internal` });
    kvWritten.add(p);
  }
}

/** N outputs (env / raw / json in turn, ten per directory) over ceil(N/2) unique KV v2 sources. */
function benchLayout(n, { prefix = "s", sources = Math.ceil(n / 2), allRaw = false } = {}) {
  seedKv(prefix, sources);
  const src = {};
  for (let j = 0; j < sources; j++) src[`${prefix}${j}`] = { type: "kv", mount: "secret", path: kvPath(prefix, j), kvVersion: 2 };
  const outputs = [];
  for (let i = 0; i < n; i++) {
    const s = `${prefix}${i % sources}`;
    const dir = `app${Math.floor(i / 10)}`;
    const kind = allRaw ? 1 : i % 3;
    if (kind === 0) outputs.push({ file: `${dir}/out${i}.env`, format: "env", keys: { DB_USER: `${s}.user`, DB_PASSWORD: `${s}.password` } });
    else if (kind === 1) outputs.push({ file: `${dir}/out${i}.pw`, format: "raw", value: `${s}.password` });
    else outputs.push({ file: `${dir}/out${i}.json`, format: "json", keys: { user: `${s}.user`, host: `${s}.host` } });
  }
  return { version: 1, auth: { approle: { roleIdFile: "approle/role_id", secretIdFile: "approle/secret_id" } }, sources: src, outputs };
}

const trees = [];
async function makeTree(layout) {
  const dir = await mkdtemp(path.join(BASE_DIR, "vr-bench-"));
  trees.push(dir);
  await mkdir(path.join(dir, "agent-only", "approle"), { recursive: true, mode: 0o700 });
  await writeFile(path.join(dir, "agent-only", "approle", "role_id"), roleId + "\n", { mode: 0o600 });
  await writeFile(path.join(dir, "agent-only", "approle", "secret_id"), secretId + "\n", { mode: 0o600 });
  const layoutFile = path.join(dir, "vault-layout.json");
  await writeFile(layoutFile, JSON.stringify(layout, null, 2) + "\n");
  const env = childEnv({ VAULT_ADDR: double.url });
  return {
    dir,
    layoutFile,
    n: layout.outputs.length,
    sources: Object.keys(layout.sources).length,
    vr: (cmd = ["sync"], o = {}) => [BIN, "--layout", layoutFile, ...cmd].concat(o.extra ?? []),
    floor: (mode) => [FLOOR, layoutFile, mode],
    opts: { cwd: dir, env },
    /** Back to a fresh tree: no token, no state, no public/. */
    reset: async () => {
      await rm(path.join(dir, "public"), { recursive: true, force: true });
      for (const f of ["token", "state.json", "state.key", "leases.json"]) await rm(path.join(dir, "agent-only", f), { force: true });
    },
  };
}

/** mtime+inode of every file under public/ (to prove a no-op run wrote nothing). */
async function fingerprint(dir) {
  const out = [];
  const walk = async (d) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else {
        const st = await stat(p);
        out.push(`${p}:${st.mtimeMs}:${st.ino}`);
      }
    }
  };
  await walk(path.join(dir, "public"));
  return out.sort().join("\n");
}

/** Every entry of public/ (the root too): relative path → type, mode and, for files, the bytes. */
async function snapshot(dir) {
  const root = path.join(dir, "public");
  const out = new Map();
  const walk = async (abs, rel) => {
    const st = await lstat(abs);
    const type = st.isDirectory() ? "dir" : st.isFile() ? "file" : "other";
    out.set(rel, { type, mode: st.mode & 0o7777, bytes: type === "file" ? await readFile(abs) : null });
    if (type === "dir") for (const name of await readdir(abs)) await walk(path.join(abs, name), rel ? `${rel}/${name}` : name);
  };
  await walk(root, "");
  return out;
}

/** Throws, listing the first differences, unless the two public/ trees are byte- and mode-identical. */
function assertSameTree(vrTree, floorTree, what) {
  const diffs = [];
  const name = (rel) => `public/${rel}`;
  for (const [rel, v] of vrTree) {
    const f = floorTree.get(rel);
    if (!f) diffs.push(`${name(rel)}: missing in the floor's tree`);
    else if (f.type !== v.type) diffs.push(`${name(rel)}: ${v.type} (vault-render) vs ${f.type} (floor)`);
    else if (f.mode !== v.mode) diffs.push(`${name(rel)}: mode ${v.mode.toString(8)} (vault-render) vs ${f.mode.toString(8)} (floor)`);
    else if (v.bytes && !v.bytes.equals(f.bytes)) diffs.push(`${name(rel)}: bytes differ (${v.bytes.length} vs ${f.bytes.length} bytes)`);
  }
  for (const rel of floorTree.keys()) if (!vrTree.has(rel)) diffs.push(`${name(rel)}: only in the floor's tree`);
  if (diffs.length) {
    throw new Error(`${what}: the floor's public/ tree differs from vault-render's (${diffs.length} differences):\n  ${diffs.slice(0, 10).join("\n  ")}`);
  }
  const files = [...vrTree.values()].filter((e) => e.type === "file").length;
  log(`${what}: the floor's public/ tree is byte- and mode-identical to vault-render's (${files} files, ${vrTree.size - files} directories)`);
}

// ---------------------------------------------------------------------------------------------
// Statistics

function fit(points) {
  const n = points.length;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  }
  const b = sxy / sxx;
  const a = my - b * mx;
  const ssTot = points.reduce((s, [, y]) => s + (y - my) ** 2, 0);
  const ssRes = points.reduce((s, [x, y]) => s + (y - (a + b * x)) ** 2, 0);
  return { a, b, r2: ssTot ? 1 - ssRes / ssTot : 1 };
}

/**
 * a + b·N for vault-render and the floor from the medians, and the same fit run by run (run i at
 * every N): per-run values of a, b, b / b_floor and a − a_floor.
 */
function fits(byN, ns) {
  const vr = fit(ns.map((n) => [n, median(byN[n].vr)]));
  const floor = fit(ns.map((n) => [n, median(byN[n].fl)]));
  const runs = Math.min(...ns.map((n) => Math.min(byN[n].vr.length, byN[n].fl.length)));
  const per = [];
  for (let i = 0; i < runs; i++) {
    const v = fit(ns.map((n) => [n, byN[n].vr[i]]));
    const f = fit(ns.map((n) => [n, byN[n].fl[i]]));
    per.push({ vr: v, floor: f, bRatio: v.b / f.b, aDiff: v.a - f.a });
  }
  return { vr, floor, per };
}

// ---------------------------------------------------------------------------------------------
// Scenarios

const results = { startup: {}, noop: {}, cold: {}, latency: {}, rss: {}, status: null, check: null, notes: [] };
const started = Date.now();

async function startup() {
  log(`start-up (${STARTUP_RUNS} rounds, interleaved)`);
  const cases = { "node -e 0": ["-e", "0"], "--version": [BIN, "--version"], "--help": [BIN, "--help"], schema: [BIN, "schema"] };
  const keys = Object.keys(cases);
  const times = Object.fromEntries(keys.map((k) => [k, []]));
  for (const argv of Object.values(cases)) await mustRun(argv); // warm the page cache
  for (let i = 0; i < STARTUP_RUNS; i++) {
    // Rotate the order so no case always runs right after the same one.
    for (let j = 0; j < keys.length; j++) {
      const k = keys[(i + j) % keys.length];
      times[k].push((await mustRun(cases[k])).ms);
    }
  }
  const e0 = times["node -e 0"];
  for (const k of keys) results.startup[k] = { ms: median(times[k]), ratio: median(times[k]) / median(e0), ratios: times[k].map((t, i) => t / e0[i]) };
  results.e0 = median(e0);
}

/** vault-render and the floor alternately, the order flipping every round; "cold" resets the tree before each run. */
async function interleaved(t, mode, runs = RUNS) {
  const vr = [];
  const fl = [];
  const reqs = [];
  const floorReqs = [];
  for (let i = 0; i < runs; i++) {
    for (const who of i % 2 ? ["floor", "vr"] : ["vr", "floor"]) {
      if (mode === "cold") await t.reset();
      double.clearRequests();
      if (who === "vr") {
        vr.push((await mustRun(t.vr(), t.opts)).ms);
        reqs.push(double.countRequests());
      } else {
        fl.push((await mustRun(t.floor(mode), t.opts)).ms);
        floorReqs.push(double.countRequests());
      }
    }
  }
  double.clearRequests();
  return { vr, fl, reqs, floorReqs };
}

/**
 * A fresh tree synced by the floor, then (reset) by vault-render: the two public/ trees must be
 * identical. vault-render runs last so the tree is left with its token and state. With `rss`,
 * both runs' peak RSS is recorded.
 */
async function coldPairChecked(t, rss) {
  await t.reset();
  const floorRss = rss ? await peakRssMB(t.floor("cold"), t.opts) : (await mustRun(t.floor("cold"), t.opts), null);
  const floorTree = await snapshot(t.dir);
  await t.reset();
  const vrRss = rss ? await peakRssMB(t.vr(), t.opts) : (await mustRun(t.vr(), t.opts), null);
  assertSameTree(await snapshot(t.dir), floorTree, `cold N=${t.n}`);
  return { vrRss, floorRss };
}

async function noop() {
  for (const n of NOOP_NS) {
    const t = await makeTree(benchLayout(n));
    const first = await coldPairChecked(t, n === RSS_N);
    if (n === RSS_N) Object.assign(results.rss, { n, coldVr: first.vrRss, coldFloor: first.floorRss });
    await mustRun(t.floor("noop"), t.opts); // the floor exits 1 if any file differs from what it renders
    const before = await fingerprint(t.dir);
    const m = await interleaved(t, "noop");
    const unchanged = (await fingerprint(t.dir)) === before;
    results.noop[n] = { n, sources: t.sources, ...m, requests: Math.max(...m.reqs), floorRequests: Math.max(...m.floorReqs), unchanged };
    log(`no-op N=${n}: vault-render ${fmt(median(m.vr))} ms, floor ${fmt(median(m.fl))} ms, ${results.noop[n].requests} requests (floor ${results.noop[n].floorRequests}; ${t.sources} sources), files untouched: ${unchanged}`);
    if (n === RSS_N) {
      const vr = [];
      const fl = [];
      for (let i = 0; i < RSS_RUNS; i++) {
        for (const who of i % 2 ? ["floor", "vr"] : ["vr", "floor"]) {
          if (who === "vr") vr.push(await peakRssMB(t.vr(), t.opts));
          else fl.push(await peakRssMB(t.floor("noop"), t.opts));
        }
      }
      Object.assign(results.rss, { noopVr: vr, noopFloor: fl });
      log(`peak RSS at N=${n}: no-op ${fmt(median(vr), 0)} MB (floor ${fmt(median(fl), 0)}), first sync ${fmt(first.vrRss, 0)} MB (floor cold ${fmt(first.floorRss, 0)})`);
    }
    if (n === STATUS_N) await checkAndStatus(t, n);
  }
  results.noop.fit = fits(results.noop, NOOP_NS);
}

async function cold() {
  for (const n of COLD_NS) {
    const t = await makeTree(benchLayout(n));
    await coldPairChecked(t, false);
    const m = await interleaved(t, "cold");
    results.cold[n] = { n, sources: t.sources, ...m, requests: Math.max(...m.reqs), floorRequests: Math.max(...m.floorReqs) };
    log(`cold N=${n}: vault-render ${fmt(median(m.vr))} ms, floor ${fmt(median(m.fl))} ms, ${results.cold[n].requests} requests (${t.sources} sources)`);
  }
  results.cold.fit = fits(results.cold, COLD_NS);
}

async function latency() {
  const t = await makeTree(benchLayout(LAT_SOURCES, { prefix: "lat", sources: LAT_SOURCES, allRaw: true }));
  await coldPairChecked(t, false);
  const runs = Math.max(3, RUNS);
  double.setLatency(0);
  const zero = await interleaved(t, "noop", 2);
  double.setLatency(LAT_MS);
  const m = await interleaved(t, "noop", runs);
  double.setLatency(0);
  const concurrency = 8;
  Object.assign(results.latency, {
    bound: LAT_MS * (1 + Math.ceil(LAT_SOURCES / concurrency)),
    concurrency,
    requests: Math.max(...m.reqs),
    vr: median(m.vr),
    floor: median(m.fl),
    ratios: m.vr.map((v, i) => v / m.fl[i]),
    vr0: median(zero.vr),
    floor0: median(zero.fl),
  });
  const L = results.latency;
  log(`latency ${LAT_MS} ms, ${LAT_SOURCES} sources: vault-render ${fmt(L.vr)} ms (${fmt(L.vr0)} at 0 ms), floor ${fmt(L.floor)} ms (${fmt(L.floor0)}), bound ${L.bound} ms`);
}

/** `status` (and `check`, reported only) interleaved with `node -e 0`, on a synced tree. */
async function checkAndStatus(t, n) {
  const e0 = [];
  const s = [];
  const c = [];
  const hasCheck = (await run(t.vr(["check", "--help"]), t.opts)).code === 0;
  await mustRun(t.vr(["status"]), t.opts); // warm
  const rounds = QUICK ? 5 : 11;
  let checkExit;
  for (let i = 0; i < rounds; i++) {
    const steps = [async () => e0.push((await mustRun(["-e", "0"])).ms), async () => s.push((await mustRun(t.vr(["status"]), t.opts)).ms)];
    for (const step of i % 2 ? steps.reverse() : steps) await step();
    if (hasCheck && i < 3) {
      const rc = await run(t.vr(["check"]), t.opts);
      c.push(rc.ms);
      checkExit = rc.code;
    }
  }
  results.status = { n, ms: median(s), e0: median(e0), ratio: median(s) / median(e0), ratios: s.map((x, i) => x / e0[i]) };
  if (hasCheck) results.check = { n, ms: median(c), exit: checkExit };
  log(`status on ${n} outputs ${fmt(median(s))} ms (node -e 0 ${fmt(median(e0))} ms)${hasCheck ? `; check ${fmt(median(c))} ms (exit ${checkExit})` : ""}`);
}

// ---------------------------------------------------------------------------------------------
// Report

function report() {
  const e0 = results.e0;
  const rows = [];
  /**
   * "met" / "missed" from the median; a verdict whose run-by-run spread reaches across the target,
   * or that rests on a negative difference, says so (the machine's noise decided it, not the code).
   */
  const judge = (m, xs, target) => ({ ok: m <= target, crosses: xs.length > 1 && Math.min(...xs) <= target && Math.max(...xs) > target, negative: m < 0 });
  const verdict = (ok) => {
    if (ok === null) return "n/a";
    if (typeof ok === "boolean") return ok ? "met" : "**missed**";
    const notes = [ok.negative && "negative: noise", ok.crosses && "the spread crosses the target"].filter(Boolean);
    return `${ok.ok ? "met" : "**missed**"}${notes.length ? ` (${notes.join("; ")})` : ""}`;
  };
  const row = (figure, measured, spr, target, ok) => rows.push(`| ${figure} | ${measured} | ${spr} | ${target} | ${verdict(ok)} |`);

  const nf = results.noop.fit;
  const cf = results.cold.fit;
  const perRow = (name, f, target) => {
    const r = f.vr.b / f.floor.b;
    row(`${name} per-output cost b`, `**${fmt(r, 2)}x** the floor's (${fmt(f.vr.b * 1000, 0)} vs ${fmt(f.floor.b * 1000, 0)} µs)`, `${spread(f.per.map((p) => p.bRatio))}x`, `≤ ${target}x the floor's`, judge(r, f.per.map((p) => p.bRatio), target));
  };
  perRow(`no-op`, nf, T.perOutputNoop);
  perRow(`cold`, cf, T.perOutputCold);
  const fixedRow = (name, f) => {
    const r = (f.vr.a - f.floor.a) / e0;
    row(`${name} fixed cost a − a_floor`, `**${fmt(r, 2)}x** \`node -e 0\` (${fmt(f.vr.a)} − ${fmt(f.floor.a)} ms)`, `${spread(f.per.map((p) => p.aDiff / e0))}x`, `≤ ${T.fixed}x \`node -e 0\``, judge(r, f.per.map((p) => p.aDiff / e0), T.fixed));
  };
  fixedRow("no-op", nf);
  fixedRow("cold", cf);
  const L = results.latency;
  const lr = L.vr / L.floor;
  row(`latency-bound (${LAT_MS} ms per request, ${LAT_SOURCES} sources)`, `**${fmt(lr, 2)}x** the floor (${fmt(L.vr)} vs ${fmt(L.floor)} ms)`, `${spread(L.ratios)}x`, `≤ ${T.latency}x the floor`, judge(lr, L.ratios, T.latency));
  const S = results.status;
  if (S) row(`\`status\`, N = ${S.n}`, `**${fmt(S.ratio, 2)}x** \`node -e 0\` (${fmt(S.ms)} vs ${fmt(S.e0)} ms)`, `${spread(S.ratios)}x`, `≤ ${T.status}x \`node -e 0\``, judge(S.ratio, S.ratios, T.status));
  else row("`status`, N = 1,000", "not measured", "", `≤ ${T.status}x \`node -e 0\``, null);
  for (const k of ["--version", "--help", "schema"]) {
    const st = results.startup[k];
    row(`\`${k}\``, `**${fmt(st.ratio, 2)}x** \`node -e 0\` (${fmt(st.ms)} vs ${fmt(e0)} ms)`, `${spread(st.ratios)}x`, `≤ ${T.startup}x \`node -e 0\``, judge(st.ratio, st.ratios, T.startup));
  }
  const R = results.rss;
  const at5000 = R.n >= 5000;
  const rssNote = at5000 ? "" : ` (N = ${R.n}; the target is at 5,000: n/a)`;
  const rr = median(R.noopVr) / median(R.noopFloor);
  row(`peak RSS at ${R.n} outputs, no-op`, `**${fmt(rr, 2)}x** the floor's (${fmt(median(R.noopVr), 0)} vs ${fmt(median(R.noopFloor), 0)} MB)${rssNote}`, `${spread(R.noopVr.map((v, i) => v / R.noopFloor[i]))}x`, `≤ ${T.rss}x the floor's`, at5000 ? judge(rr, R.noopVr.map((v, i) => v / R.noopFloor[i]), T.rss) : null);
  const rc = R.coldVr / R.coldFloor;
  row(`peak RSS at ${R.n} outputs, first sync (cold)`, `**${fmt(rc, 2)}x** the floor's (${fmt(R.coldVr, 0)} vs ${fmt(R.coldFloor, 0)} MB)${rssNote}`, "one run", `≤ ${T.rss}x the floor's`, at5000 ? rc <= T.rss : null);
  const reqOk = NOOP_NS.every((n) => results.noop[n].requests === results.noop[n].sources + 1);
  row("requests per no-op run", NOOP_NS.map((n) => `${results.noop[n].requests} for ${results.noop[n].sources} sources`).join(", "), `floor: ${NOOP_NS.map((n) => results.noop[n].floorRequests).join(", ")}`, "unique sources + 1", reqOk);
  const untouched = NOOP_NS.every((n) => results.noop[n].unchanged);
  row("files written per no-op run", untouched ? "0 (mtime and inode of every output unchanged)" : "**some files changed**", `${NOOP_NS.length} sizes × ${RUNS} runs`, "0", untouched);

  // Other figures: the fits themselves, linearity, cold requests, check.
  const other = [];
  const fitLine = (name, f) =>
    other.push(
      `| ${name}: a + b·N, vault-render | a = ${fmt(f.vr.a)} ms (${spread(f.per.map((p) => p.vr.a), 0)}), b = ${fmt(f.vr.b * 1000, 0)} µs (${spread(f.per.map((p) => p.vr.b * 1000), 0)}), R² ${fmt(f.vr.r2, 4)} |`,
      `| ${name}: a + b·N, floor | a = ${fmt(f.floor.a)} ms (${spread(f.per.map((p) => p.floor.a), 0)}), b = ${fmt(f.floor.b * 1000, 0)} µs (${spread(f.per.map((p) => p.floor.b * 1000), 0)}), R² ${fmt(f.floor.r2, 4)} |`,
    );
  fitLine(`no-op (N = ${NOOP_NS.join(", ")})`, nf);
  fitLine(`cold (N = ${COLD_NS.join(", ")})`, cf);
  const ns = NOOP_NS;
  if (ns.length >= 3) {
    // Linear means the cost of one more output does not grow with N: the marginal cost of the
    // last segment against the one before it (an R² hides a quadratic term well).
    const seg = (who, i) => (median(results.noop[ns[i]][who]) - median(results.noop[ns[i - 1]][who])) / (ns[i] - ns[i - 1]);
    const k = ns.length - 1;
    other.push(`| no-op: linear in N (marginal cost per output, N ${ns[k - 1]}→${ns[k]} vs ${ns[k - 2]}→${ns[k - 1]}) | ${fmt(seg("vr", k) / seg("vr", k - 1), 2)}x (${fmt(seg("vr", k) * 1000, 0)} vs ${fmt(seg("vr", k - 1) * 1000, 0)} µs; floor ${fmt(seg("fl", k) / seg("fl", k - 1), 2)}x) |`);
  }
  other.push(`| requests per cold run | ${COLD_NS.map((n) => `${results.cold[n].requests} for ${results.cold[n].sources} sources`).join(", ")} (floor: ${COLD_NS.map((n) => results.cold[n].floorRequests).join(", ")}) |`);
  other.push(`| latency: time added by ${LAT_MS} ms per request (wall − wall at 0 ms) / (${LAT_MS} ms × (1 + ⌈${LAT_SOURCES} / ${L.concurrency}⌉) = ${L.bound} ms) | vault-render ${fmt((L.vr - L.vr0) / L.bound, 2)}x, floor ${fmt((L.floor - L.floor0) / L.bound, 2)}x |`);
  if (results.check) other.push(`| \`check\` on ${results.check.n} outputs | ${fmt(results.check.ms)} ms (${fmt(results.check.ms / e0, 2)}x \`node -e 0\`, exit ${results.check.exit}) |`);

  const raw = ["| scenario | N | vault-render (ms) | floor (ms) | requests |", "|---|---:|---:|---:|---:|"];
  const cell = (xs) => `${fmt(median(xs))} (${spread(xs, 0)})`;
  for (const n of NOOP_NS) raw.push(`| no-op | ${n} | ${cell(results.noop[n].vr)} | ${cell(results.noop[n].fl)} | ${results.noop[n].requests} |`);
  for (const n of COLD_NS) raw.push(`| cold | ${n} | ${cell(results.cold[n].vr)} | ${cell(results.cold[n].fl)} | ${results.cold[n].requests} |`);
  raw.push(`| latency ${LAT_MS} ms | ${LAT_SOURCES} | ${fmt(L.vr)} (${fmt(L.vr0)} at 0 ms) | ${fmt(L.floor)} (${fmt(L.floor0)} at 0 ms) | ${L.requests} |`);
  raw.push(`| \`node -e 0\` | | ${fmt(e0)} | | |`);

  const cpu = os.cpus();
  const head = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${cpu.length} × ${cpu[0]?.model?.trim() ?? "cpu"}, ${fmt(os.totalmem() / 2 ** 30, 1)} GiB RAM, ${os.type()} ${os.release()}, Node ${process.version}; ` +
      `${QUICK ? "`npm run bench -- --quick`" : "`npm run bench`"} (${RUNS} interleaved runs per point, medians; start-up ${STARTUP_RUNS} rounds), trees in ${BASE_DIR}, load average before ${results.load}, ${fmt((Date.now() - started) / 1000, 0)} s in all. ` +
      `The floor's public/ trees were checked byte- and mode-identical to vault-render's at every size.`,
  ];
  return [
    ...head,
    ...results.notes.map((n) => `**${n}**`),
    "",
    "Spread: the min–max of the same ratio computed run by run (run i of each program, measured next to each other; for b and a, the fit of run i at every N). The verdict is the median's; it says so when the spread crosses the target.",
    "",
    "| figure | measured (median) | spread | target | |",
    "|---|---|---|---|---|",
    ...rows,
    "",
    "| other figures | |",
    "|---|---|",
    ...other,
    "",
    "Medians (min–max) of the wall time of the child process, spawn to exit:",
    "",
    ...raw,
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------

try {
  if (!existsSync(path.join(ROOT, "dist", "cli.js"))) throw new Error("dist/ is missing: run `npm run build` (npm run bench does)");
  if (!readFileSync(path.join(ROOT, "dist", "cli.js"), "utf8").includes("__vrCreateRequire")) {
    results.notes.push("dist/cli.js is NOT the esbuild bundle (tsc output only): run `npm run build`");
    log("warning: dist/cli.js is not the bundle (did `tsc` run alone?); measuring it anyway");
  }
  results.load = os.loadavg().map((x) => x.toFixed(2)).join(" ");
  await startup();
  await noop();
  await cold();
  await latency();
  const md = report();
  process.stdout.write(md + "\n");
  writeFileSync(path.join(os.tmpdir(), "vault-render-bench.json"), JSON.stringify(results, null, 2));
  if (WRITE_DOC && existsSync(DOC)) {
    const doc = readFileSync(DOC, "utf8");
    const a = doc.indexOf("<!-- results:start -->");
    const b = doc.indexOf("<!-- results:end -->");
    if (a >= 0 && b > a) {
      writeFileSync(DOC, doc.slice(0, a) + "<!-- results:start -->\n" + md + "\n" + doc.slice(b));
      log(`results written into ${path.relative(ROOT, DOC)}`);
    }
  }
} finally {
  await double.close();
  for (const d of trees) await rm(d, { recursive: true, force: true });
}
