/**
 * The crash fixture (docs/reliability.md §1) shared by crash.test.ts (a few random kills in
 * `npm test`) and crash.slow.test.ts (the CI size): a tree of 10 KV sources rendered into 40
 * outputs of every format plus a certificate set, the invariants after a kill -9, and the random
 * kill trials themselves.
 */
import { X509Certificate, createPrivateKey } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { expect } from "vitest";
import { FILE_MODE } from "../../src/core/fs/writer.js";
import { baseLayout, makeTree } from "../helpers.js";
import type { Tree } from "../helpers.js";
import { listFiles, rng, sleep, spawnCli, tempFiles } from "./support.js";

const POLICY = `
path "secret/data/*" { capabilities = ["read"] }
path "sys/internal/ui/mounts/*" { capabilities = ["read"] }
path "pki_int/issue/web" { capabilities = ["update"] }
`;
const SOURCES = 10;
export const OUTPUTS = 40;
const FORMATS = ["raw", "env", "json", "template"] as const;

function value(gen: number, s: number, k: number): string {
  // Long enough that a partial file could not equal a complete one by accident.
  return `gen${gen}-s${s}-k${k}-` + "x".repeat(200 + ((gen * 7 + s * 3 + k) % 50));
}

export function expected(o: number, gen: number): string {
  const s = o % SOURCES;
  const k = Math.floor(o / SOURCES) % 4;
  switch (FORMATS[o % 4]) {
    case "raw":
      return value(gen, s, k);
    case "env":
      return `A='${value(gen, s, k)}'\nB='${value(gen, s, (k + 1) % 4)}'\n`;
    case "json":
      return JSON.stringify({ a: value(gen, s, k), b: value(gen, s, (k + 2) % 4) }, null, 2) + "\n";
    default:
      return `a=${value(gen, s, k)}\nb=${value(gen, s, (k + 3) % 4)}\n`;
  }
}

export function outputFile(o: number): string {
  return `d${o % 5}/f${o}.${FORMATS[o % 4]}`;
}

export function layout(withPki: boolean, ttl: string): Record<string, unknown> {
  const sources: Record<string, unknown> = {};
  for (let s = 0; s < SOURCES; s++) sources[`s${s}`] = { type: "kv", mount: "secret", path: `crash/s${s}`, kvVersion: 2 };
  const outputs: unknown[] = [];
  if (withPki) outputs.push({ format: "pki", dir: "certs/web", mount: "pki_int", role: "web", commonName: "web.home.arpa", ttl, renewBefore: "1h" });
  for (let o = 0; o < OUTPUTS; o++) {
    const s = o % SOURCES;
    const k = Math.floor(o / SOURCES) % 4;
    const file = outputFile(o);
    switch (FORMATS[o % 4]) {
      case "raw":
        outputs.push({ file, format: "raw", value: `s${s}.k${k}` });
        break;
      case "env":
        outputs.push({ file, format: "env", keys: { A: `s${s}.k${k}`, B: `s${s}.k${(k + 1) % 4}` } });
        break;
      case "json":
        outputs.push({ file, format: "json", keys: { a: `s${s}.k${k}`, b: `s${s}.k${(k + 2) % 4}` } });
        break;
      default:
        outputs.push({ file, format: "template", inline: `a={{ s${s}.k${k} }}\nb={{ s${s}.k${(k + 3) % 4} }}\n` });
    }
  }
  return baseLayout({ sources, outputs });
}

export function putGen(t: Tree, gen: number) {
  for (let s = 0; s < SOURCES; s++) {
    const data: Record<string, string> = {};
    for (let k = 0; k < 4; k++) data[`k${k}`] = value(gen, s, k);
    t.double.kvPut("secret", `crash/s${s}`, data);
  }
}

export async function checkCertSet(t: Tree): Promise<string> {
  const dir = path.join(t.publicDir, "certs/web");
  const cert = new X509Certificate(await readFile(path.join(dir, "cert.pem")));
  expect(cert.checkPrivateKey(createPrivateKey(await readFile(path.join(dir, "key.pem"))))).toBe(true);
  expect((await readFile(path.join(dir, "fullchain.pem"), "utf8")).startsWith(cert.toString().trim())).toBe(true);
  return cert.serialNumber;
}

/** The tree every crash test starts from: generation 0 synced, with a 72 h certificate. */
export async function crashTree(): Promise<Tree> {
  const t = await makeTree({ policy: POLICY, mode: "in-process" });
  t.double.mountPki("pki_int");
  // EC keys: nothing here depends on the key type, and the double's RSA key generation (0.3-1.5 s a key) would be the test's time.
  t.double.addPkiRole("pki_int", "web", { allowedDomains: ["home.arpa"], allowSubdomains: true, maxTtl: 30 * 86400, keyType: "ec" });
  putGen(t, 0);
  await t.writeLayout(layout(true, "72h"));
  const r = await t.run(["sync"]);
  expect(r).toMatchObject({ code: 0, stderr: "" });
  return t;
}

/** The invariants that must hold at any instant after a kill -9. */
export async function checkAfterKill(t: Tree, oldGen: number, newGen: number, trial: string, withPki = true) {
  for (let o = 0; o < OUTPUTS; o++) {
    const abs = path.join(t.publicDir, outputFile(o));
    const content = await readFile(abs, "utf8");
    const ok = content === expected(o, oldGen) || content === expected(o, newGen);
    if (!ok) throw new Error(`${trial}: ${outputFile(o)} is neither the old nor the new content (${content.length} bytes)`);
    expect((await stat(abs)).mode & 0o7777).toBe(FILE_MODE);
  }
  for (const f of await listFiles(t.publicDir)) {
    const st = await stat(path.join(t.publicDir, f));
    if (!path.basename(f).startsWith(".vault-render.tmp-")) expect([f, st.mode & 0o7777]).toEqual([f, 0o644]);
  }
  for (const f of withPki ? ["cert.pem", "key.pem", "ca.pem", "fullchain.pem"] : []) {
    const pem = await readFile(path.join(t.publicDir, "certs/web", f), "utf8");
    expect(pem).toMatch(/^-----BEGIN [A-Z ]+-----\n[\s\S]+-----END [A-Z ]+-----\n$/);
  }
  const state = JSON.parse(await readFile(path.join(t.agentDir, "state.json"), "utf8")) as { version: number };
  expect(state.version).toBe(1);
}

/**
 * `trials` random kills -9 of changing syncs (every 3rd a forced certificate rotation, every 4th a
 * certificate request change), each checked after the kill and after the next sync; `gen.n` is
 * the generation on disk, advanced by each trial.
 */
export async function killTrials(t: Tree, trials: number, gen: { n: number }): Promise<void> {
      const seed = Number(process.env.CRASH_SEED ?? Date.now() % 1e9);
      const rand = rng(seed);
      // Calibrate: how long does an unkilled changing sync take here? The shortest of three (a
      // load spike during one run must not push every kill past the end of the runs), and
      // shortened again whenever a run finishes before its kill, so a busy machine still kills
      // most runs at random points inside them.
      t.double.setLatency(10);
      let full = Infinity;
      let started = 0;
      for (let k = 0; k < 3; k++) {
        putGen(t, ++gen.n);
        started = Date.now();
        // A child process, as the killed runs are (spawnCli): its start-up is part of the window.
        expect((await t.run(["sync"], { mode: "child" })).code).toBe(0);
        full = Math.min(full, Date.now() - started);
      }
      const calibrated = full;
      let ttl = "72h";
      const stats = { killed: 0, finished: 0, rolledForward: 0, tempsCleaned: 0, issued: 0 };
      for (let i = 0; i < trials; i++) {
        const trial = `trial ${i} (seed ${seed})`;
        t.double.setLatency(5 + Math.floor(rand() * 16));
        const oldGen = gen.n;
        putGen(t, ++gen.n);
        const rotate = i % 3 === 1;
        if (i % 4 === 3) {
          ttl = ttl === "72h" ? "71h" : "72h";
          await t.writeLayout(layout(true, ttl));
        }
        const issuedBefore = t.double.pkiIssued("pki_int").length;
        const serialBefore = await checkCertSet(t);
        const run = spawnCli(t, rotate ? ["rotate", "certs/web", "--no-hooks"] : ["sync"]);
        const delay = Math.floor(full * (0.3 + rand() * 0.9));
        await sleep(delay);
        run.child.kill("SIGKILL");
        const res = await run.done;
        if (res.signal === "SIGKILL") stats.killed++;
        else {
          stats.finished++;
          // This makes "most runs killed" easier to reach on a slow machine; what the test judges is
          // every trial's state after its kill, which a kill at any point must leave consistent.
          full = Math.max(50, Math.floor(full * 0.8));
        }
        await checkAfterKill(t, oldGen, gen.n, trial);
        // Did the killed run commit a new certificate set (fully, or pending in the journal)?
        const journal = await stat(path.join(t.agentDir, "commit-journal.json")).then(() => true, () => false);
        const onDisk = new X509Certificate(await readFile(path.join(t.publicDir, "certs/web/cert.pem"))).serialNumber;
        const committed = journal || onDisk !== serialBefore;
        const issuedByKilled = t.double.pkiIssued("pki_int").length - issuedBefore;
        // The next sync converges.
        t.double.setLatency(0);
        const next = await t.run(["sync", "-v"]);
        if (next.code !== 0) throw new Error(`${trial}: the sync after the kill exited ${next.code}: ${next.stderr}`);
        if (/completed an interrupted certificate set commit/.test(next.stderr)) stats.rolledForward++;
        if (/temp files left by an interrupted run/.test(next.stderr)) stats.tempsCleaned++;
        for (let o = 0; o < OUTPUTS; o++) expect(await readFile(path.join(t.publicDir, outputFile(o)), "utf8")).toBe(expected(o, gen.n));
        expect(await tempFiles(t.dir)).toEqual([]);
        await expect(stat(path.join(t.agentDir, "lock"))).rejects.toThrow(/ENOENT/);
        await expect(stat(path.join(t.agentDir, "commit-journal.json"))).rejects.toThrow(/ENOENT/);
        const serialAfter = await checkCertSet(t);
        const issuedNow = t.double.pkiIssued("pki_int").length - issuedBefore;
        stats.issued += issuedNow;
        const issuedByNext = issuedNow - issuedByKilled;
        // A committed set is valid and matches the request: the next sync must not issue again.
        // If nothing was committed, the next sync issues only when the request changed.
        const requestChanged = i % 4 === 3;
        const allowed = committed ? 0 : requestChanged ? 1 : 0;
        if (issuedByNext > allowed) throw new Error(`${trial}: the sync after the kill issued ${issuedByNext} certificate(s) (committed by the killed run: ${committed}; serial ${serialBefore} -> ${onDisk} -> ${serialAfter}); a still-valid certificate was re-issued`);
        // Now and then, a third run has nothing to do.
        if (i % 5 !== 4) continue;
        const again = await t.run(["sync", "-v"]);
        expect(again.stderr).toMatch(/0 created, 0 updated, 0 deleted, \d+ unchanged, 0 failed/);
        expect(t.double.pkiIssued("pki_int").length - issuedBefore).toBe(issuedNow);
      }
      started = Date.now();
      console.log(`crash: ${trials} trials, seed ${seed}, calibrated run ${calibrated} ms (${full} ms at the end): ${JSON.stringify(stats)}`);
      expect(stats.killed).toBeGreaterThan(trials / 2);
    }
