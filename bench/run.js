// `npm run bench [-- --quick] [-- --no-doc] [-- --runs N] [-- --dir DIR]`
//
// Measures, on this machine and in this run, the built CLI (bin/vault-render.js) against
//   - `node -e 0` (start-up), and
//   - the floor (bench/floor.js): the same HTTP reads with the same concurrency against the same
//     Vault double, the same atomic writes, nothing else.
// Every scenario runs vault-render and the floor alternately, several times, and takes medians;
// times are then fitted as a + b·N (least squares) to separate fixed cost from cost per output.
// Results are reported as ratios. The full run rewrites the results section of docs/benchmarks.md.
//
// The Vault double runs in THIS process; every measured program is an async child process.
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, stat, writeFile, unlink } from "node:fs/promises";
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
const RUNS = Number(argVal("--runs") ?? (QUICK ? 3 : 5));
/** Fewer runs for the big points (each is seconds long; their relative noise is small). */
const runsFor = (n) => (n >= 1000 ? Math.min(RUNS, 3) : RUNS);
const STARTUP_RUNS = QUICK ? 5 : 15;
const NOOP_NS = QUICK ? [10, 100, 500] : [10, 100, 1000, 5000];
const COLD_NS = QUICK ? [10, 100] : [10, 100, 1000];
const LAT_SOURCES = 200;
const LAT_MS = 20;
const BASE_DIR = argVal("--dir") ?? os.tmpdir();

const T = { nodeE0: 1.4, fixed: 1.5, perOutput: 1.25, latency: 1.2, rssMB: 150, status: 2 };
const log = (s) => process.stderr.write(`bench: ${s}\n`);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "n/a");

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

// ---------------------------------------------------------------------------------------------
// Scenarios

const results = { startup: {}, noop: {}, cold: {}, latency: {}, other: {}, notes: [] };
const started = Date.now();

async function startup() {
  log(`start-up (${STARTUP_RUNS} runs each, interleaved)`);
  const cases = { "node -e 0": ["-e", "0"], "--version": [BIN, "--version"], "--help": [BIN, "--help"], schema: [BIN, "schema"] };
  const times = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  for (const argv of Object.values(cases)) await mustRun(argv); // warm the page cache
  for (let i = 0; i < STARTUP_RUNS; i++) for (const [k, argv] of Object.entries(cases)) times[k].push((await mustRun(argv)).ms);
  for (const [k, ts] of Object.entries(times)) results.startup[k] = median(ts);
}

/**
 * vault-render and the floor measured alternately (the order flips every round, so neither always
 * runs second on a warm cache); "cold" resets the tree before every run.
 */
async function interleaved(t, n, mode) {
  const vr = [];
  const fl = [];
  const reqs = [];
  for (let i = 0; i < runsFor(n); i++) {
    for (const who of i % 2 ? ["floor", "vr"] : ["vr", "floor"]) {
      if (mode === "cold") await t.reset();
      if (who === "vr") {
        double.clearRequests();
        vr.push((await mustRun(t.vr(), t.opts)).ms);
        reqs.push(double.countRequests());
      } else fl.push((await mustRun(t.floor(mode), t.opts)).ms);
    }
  }
  double.clearRequests();
  return { vr, fl, reqs };
}

async function noop() {
  const vrPts = [];
  const flPts = [];
  for (const n of NOOP_NS) {
    const t = await makeTree(benchLayout(n));
    // The first sync creates everything (not measured here; its peak RSS is kept for the largest N).
    if (n === NOOP_NS.at(-1)) results.other.rssColdMB = await peakRssMB(t.vr(), t.opts);
    else await mustRun(t.vr(), t.opts);
    await mustRun(t.floor("noop"), t.opts); // also proves the floor renders vault-render's bytes
    const before = await fingerprint(t.dir);
    const { vr, fl, reqs } = await interleaved(t, n, "noop");
    const unchanged = (await fingerprint(t.dir)) === before;
    const r = { n, sources: t.sources, vr: median(vr), floor: median(fl), requests: Math.max(...reqs), unchanged };
    if (n === NOOP_NS.at(-1)) results.other.rssNoopMB = await peakRssMB(t.vr(), t.opts);
    if (n === 1000 || (QUICK && n === NOOP_NS.at(-1))) await checkAndStatus(t, n);
    results.noop[n] = r;
    vrPts.push([n, r.vr]);
    flPts.push([n, r.floor]);
    log(`no-op N=${n}: vault-render ${fmt(r.vr)} ms, floor ${fmt(r.floor)} ms, ${r.requests} requests (${t.sources} sources), files untouched: ${unchanged}`);
  }
  results.noop.fitVr = fit(vrPts);
  results.noop.fitFloor = fit(flPts);
}

async function cold() {
  const vrPts = [];
  const flPts = [];
  for (const n of COLD_NS) {
    const t = await makeTree(benchLayout(n));
    const { vr, fl, reqs } = await interleaved(t, n, "cold");
    const r = { n, sources: t.sources, vr: median(vr), floor: median(fl), requests: Math.max(...reqs) };
    results.cold[n] = r;
    vrPts.push([n, r.vr]);
    flPts.push([n, r.floor]);
    log(`cold N=${n}: vault-render ${fmt(r.vr)} ms, floor ${fmt(r.floor)} ms, ${r.requests} requests (${t.sources} sources)`);
  }
  results.cold.fitVr = fit(vrPts);
  results.cold.fitFloor = fit(flPts);
}

async function latency() {
  const t = await makeTree(benchLayout(LAT_SOURCES, { prefix: "lat", sources: LAT_SOURCES, allRaw: true }));
  await mustRun(t.vr(), t.opts);
  const m = { vr0: [], vr: [], fl0: [], fl: [] };
  const runs = Math.max(2, RUNS - 2);
  for (let i = 0; i < runs; i++) {
    double.setLatency(0);
    m.vr0.push((await mustRun(t.vr(), t.opts)).ms);
    m.fl0.push((await mustRun(t.floor("noop"), t.opts)).ms);
    double.setLatency(LAT_MS);
    double.clearRequests();
    m.vr.push((await mustRun(t.vr(), t.opts)).ms);
    results.latency.requests = double.countRequests();
    m.fl.push((await mustRun(t.floor("noop"), t.opts)).ms);
  }
  double.setLatency(0);
  double.clearRequests();
  const concurrency = 8;
  const bound = LAT_MS * (1 + Math.ceil(LAT_SOURCES / concurrency));
  Object.assign(results.latency, { bound, concurrency, vr: median(m.vr), vr0: median(m.vr0), floor: median(m.fl), floor0: median(m.fl0) });
  log(`latency ${LAT_MS} ms, ${LAT_SOURCES} sources: vault-render ${fmt(results.latency.vr)} ms (${fmt(results.latency.vr0)} at 0 ms), floor ${fmt(results.latency.floor)} ms, bound ${bound} ms`);
}

async function checkAndStatus(t, n) {
  const probe = await run(t.vr(["check", "--help"]), t.opts);
  if (probe.code !== 0) {
    results.other.check = null;
    return;
  }
  const c = [];
  const s = [];
  for (let i = 0; i < Math.min(RUNS, 3); i++) {
    const rc = await run(t.vr(["check"]), t.opts);
    c.push(rc.ms);
    results.other.checkExit = rc.code;
    s.push((await mustRun(t.vr(["status"]), t.opts)).ms);
  }
  results.other.check = { n, check: median(c), status: median(s) };
  log(`check ${fmt(median(c))} ms (exit ${results.other.checkExit}), status ${fmt(median(s))} ms on ${n} outputs`);
}

// ---------------------------------------------------------------------------------------------
// Report

function report() {
  const e0 = results.startup["node -e 0"];
  const rows = [];
  const row = (scenario, measured, target, ok) => rows.push(`| ${scenario} | ${measured} | ${target} | ${ok === null ? "n/a" : ok ? "met" : "**missed**"} |`);
  for (const k of ["--version", "--help", "schema"]) {
    const ratio = results.startup[k] / e0;
    row(`start-up \`${k}\``, `${fmt(ratio, 2)}x \`node -e 0\``, `≤ ${T.nodeE0}x`, ratio <= T.nodeE0);
  }
  for (const [name, key, ns] of [
    ["no-op sync", "noop", NOOP_NS],
    ["cold sync", "cold", COLD_NS],
  ]) {
    const fv = results[key].fitVr;
    const ff = results[key].fitFloor;
    // a from the fit over all N (as specified) and from the two smallest N, where a superlinear
    // per-output cost cannot drag it down.
    const small = (who) => fit(ns.slice(0, 2).map((n) => [n, results[key][n][who]]));
    const aS = small("vr").a;
    const aSf = small("floor").a;
    const fixed = (fv.a - ff.a) / e0;
    const fixedS = (aS - aSf) / e0;
    row(
      `${name}: fixed cost above the floor's (a − a_floor)`,
      `${fmt(fixedS, 2)}x \`node -e 0\` (${fmt(aS)} vs ${fmt(aSf)} ms, from N = ${ns[0]}, ${ns[1]}); over all N: ${fmt(fixed, 2)}x (${fmt(fv.a)} vs ${fmt(ff.a)} ms)`,
      `≤ ${T.fixed}x`,
      Math.max(fixed, fixedS) <= T.fixed,
    );
    const per = fv.b / ff.b;
    row(`${name}: cost per output (b / b_floor)`, `${fmt(per, 2)}x (${fmt(fv.b * 1000, 0)} vs ${fmt(ff.b * 1000, 0)} µs)`, `≤ ${T.perOutput}x`, per <= T.perOutput);
    const reqOk = ns.every((n) => results[key][n].requests <= results[key][n].sources + 1);
    row(`${name}: requests sent`, ns.map((n) => `${results[key][n].requests} for ${results[key][n].sources} sources`).join(", "), "≤ sources + 1", reqOk);
    if (key === "noop") row("no-op sync: files written", ns.every((n) => results.noop[n].unchanged) ? "0 (mtimes and inodes unchanged)" : "some files changed", "0", ns.every((n) => results.noop[n].unchanged));
    // Linear means the cost of one more output does not grow with N: compare the marginal cost of
    // the last segment with the one before it (the R² of a fit hides a quadratic term well).
    const seg = (who, i) => (results[key][ns[i]][who] - results[key][ns[i - 1]][who]) / (ns[i] - ns[i - 1]);
    const k = ns.length - 1;
    if (k < 2) {
      row(`${name}: linear in N`, `n/a with ${ns.length} sizes (R² ${fmt(fv.r2, 4)})`, "≈ 1x", null);
      continue;
    }
    const growth = seg("vr", k) / seg("vr", k - 1);
    row(
      `${name}: linear in N (marginal cost per output, N ${ns[k - 1]}→${ns[k]} vs ${ns[k - 2]}→${ns[k - 1]})`,
      `${fmt(growth, 2)}x (${fmt(seg("vr", k) * 1000, 0)} vs ${fmt(seg("vr", k - 1) * 1000, 0)} µs; floor ${fmt(seg("floor", k) / seg("floor", k - 1), 2)}x); R² ${fmt(fv.r2, 4)}`,
      "≈ 1x",
      growth <= 1.3,
    );
  }
  const L = results.latency;
  const fixedVr = fit(NOOP_NS.slice(0, 2).map((n) => [n, results.noop[n].vr])).a;
  const latRatio = (L.vr - fixedVr) / L.bound;
  row(`latency-bound (${LAT_MS} ms, ${LAT_SOURCES} sources, concurrency ${L.concurrency}): (wall − fixed) / bound`, `${fmt(latRatio, 2)}x (${fmt(L.vr)} − ${fmt(fixedVr)} ms vs ${L.bound} ms; floor ${fmt((L.floor - fit(NOOP_NS.slice(0, 2).map((n) => [n, results.noop[n].floor])).a) / L.bound, 2)}x). Latency added (wall − wall at 0 ms) / bound: ${fmt((L.vr - L.vr0) / L.bound, 2)}x, floor ${fmt((L.floor - L.floor0) / L.bound, 2)}x`, `≤ ${T.latency}x`, latRatio <= T.latency);
  const rssN = NOOP_NS.at(-1);
  const rss = Math.max(results.other.rssNoopMB, results.other.rssColdMB);
  // (peak RSS is reported, not fitted)
  row(`peak RSS, ${rssN} outputs (first sync / no-op)`, `${fmt(results.other.rssColdMB, 0)} / ${fmt(results.other.rssNoopMB, 0)} MB`, `< ${T.rssMB} MB${rssN < 5000 ? " (at 5,000)" : ""}`, rssN < 5000 ? null : rss < T.rssMB);
  const c = results.other.check;
  if (c) {
    row(`\`check\` on ${c.n} outputs`, `${fmt(c.check)} ms (${fmt(c.check / e0, 2)}x \`node -e 0\`, exit ${results.other.checkExit})`, "report", null);
    row(`\`status\` on ${c.n} outputs`, `${fmt(c.status / e0, 2)}x \`node -e 0\``, `≤ ${T.status}x`, c.status / e0 <= T.status);
  } else {
    row("`check` / `status`", "not implemented yet", "", null);
  }

  const raw = [];
  raw.push("| scenario | N | vault-render (ms) | floor (ms) | requests |", "|---|---:|---:|---:|---:|");
  for (const n of NOOP_NS) raw.push(`| no-op | ${n} | ${fmt(results.noop[n].vr)} | ${fmt(results.noop[n].floor)} | ${results.noop[n].requests} |`);
  for (const n of COLD_NS) raw.push(`| cold | ${n} | ${fmt(results.cold[n].vr)} | ${fmt(results.cold[n].floor)} | ${results.cold[n].requests} |`);
  raw.push(`| latency ${LAT_MS} ms | ${LAT_SOURCES} | ${fmt(L.vr)} (${fmt(L.vr0)} at 0 ms) | ${fmt(L.floor)} (${fmt(L.floor0)} at 0 ms) | ${L.requests} |`);
  raw.push(`| \`node -e 0\` | | ${fmt(e0)} | | |`);

  const cpu = os.cpus();
  const head = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${cpu.length} × ${cpu[0]?.model?.trim() ?? "cpu"}, ${fmt(os.totalmem() / 2 ** 30, 1)} GiB RAM, ${os.type()} ${os.release()}, Node ${process.version}; ` +
      `${QUICK ? "`npm run bench -- --quick`" : "`npm run bench`"} (${RUNS} runs per point, medians; start-up ${STARTUP_RUNS} runs), trees in ${BASE_DIR}, ${fmt((Date.now() - started) / 1000, 0)} s in all.`,
  ];
  return [...head, ...results.notes.map((n) => `**${n}**`), "", "| target | measured | target | |", "|---|---|---|---|", ...rows, "", "Medians (wall time of the child process, spawn to exit):", "", ...raw].join("\n");
}

// ---------------------------------------------------------------------------------------------

try {
  if (!existsSync(path.join(ROOT, "dist", "cli.js"))) throw new Error("dist/ is missing: run `npm run build` (npm run bench does)");
  if (!readFileSync(path.join(ROOT, "dist", "cli.js"), "utf8").includes("__vrCreateRequire")) {
    results.notes.push("dist/cli.js is NOT the esbuild bundle (tsc output only): run `npm run build`");
    log("warning: dist/cli.js is not the bundle (did `tsc` run alone?); measuring it anyway");
  }
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
