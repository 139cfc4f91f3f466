/**
 * `check`: verify without writing. Reports every finding (not just the first), never values:
 * only names, paths, keys, serials, dates, modes. Exit 0 when no finding is an error, 1 when
 * problems were found, 2 for an invalid layout (thrown before), 3 when Vault could not be
 * consulted (offline findings are still reported).
 */
import { count } from "../support/plural.js";
import { createPrivateKey } from "node:crypto";
import { lstat, readFile, readdir, stat } from "node:fs/promises";
import path from "node:path";
import { appRoleFileProblem, appRoleModeText, inspectAppRoleFiles, openMode } from "../vault/approle-files.js";
import type { Clock } from "../support/clock.js";
import { ExitCode, SourceUnavailable, VrError, describeError } from "../support/errors.js";
import type { Env, ResolvedLayout } from "../layout/load.js";
import { loadLayout } from "../layout/load.js";
import { isFileOutput, outputFiles, outputId, pkiFiles } from "../layout/outputs.js";
import type { FileOutput, PkiOutput } from "../layout/schema.js";
import { LeaseStore } from "../vault/leases.js";
import type { Logger } from "../support/log.js";
import type { Redactor } from "../support/redact.js";
import { TEMP_PREFIX } from "../fs/paths.js";
import { encodeEnvFile } from "../render/dotenv.js";
import type { EnvDialect } from "../render/dotenv.js";
import type { SourceResults } from "../render/index.js";
import { renderOutput, sourceNeeds } from "../render/index.js";
import type { TemplatePart } from "../render/template.js";
import type { SourceData } from "../vault/kv.js";
import { StateStore } from "../state/state.js";
import { describeAccessor, leaseOwnerGone, tokenMaxTtlWarning } from "../vault/token-horizon.js";
import type { State } from "../state/state.js";
import type { RunContext } from "../run/context.js";
import { openRun } from "../run/context.js";
import { fetchStatic } from "../sync/fetch.js";
import { diffKeys, formatKeyDiff } from "../support/key-diff.js";
import { VaultClient } from "../vault/client.js";
import { DIR_MODE, FILE_MODE, readPrivate } from "../fs/writer.js";
import { expectedSet, inspectSet } from "../sync/pki-set.js";
import { readLeaf } from "../vault/pki.js";

type Severity = "error" | "warning" | "ok";

interface Finding {
  /** A stable identifier of the kind of check, e.g. "content", "mode", "vault.sealed". */
  check: string;
  severity: Severity;
  /** What it is about: an output file, a source, "vault", "agent-only", ... */
  subject: string;
  message: string;
  /** Drift details for env/json outputs: key names only. */
  keys?: { added: string[]; removed: string[]; changed: string[] };
}

export interface CheckOptions {
  layoutFile: string;
  env: Env;
  offline: boolean;
  minValidityMs: number;
  minTokenTtlMs: number;
  maxAgeMs?: number;
  log: Logger;
  redactor: Redactor;
  clock: Clock;
}

export interface CheckReport {
  version: 1;
  ok: boolean;
  exit: ExitCode;
  layout: string;
  offline: boolean;
  vaultVerified: boolean;
  counts: { error: number; warning: number; ok: number };
  findings: Finding[];
}

class Findings {
  readonly list: Finding[] = [];
  add(check: string, severity: Severity, subject: string, message: string, extra: Partial<Finding> = {}): void {
    this.list.push({ check, severity, subject, message, ...extra });
  }
}

const modeText = (m: number) => m.toString(8).padStart(4, "0");

/** Per-key drift of a .env file, from the encoded assignment of each key (values never leave memory). */
function envDrift(expected: Map<string, string>, dialect: EnvDialect, file: string, disk: string) {
  const diskKeys = new Set<string>();
  for (const line of disk.split("\n")) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(line);
    if (m) diskKeys.add(m[1] as string);
  }
  const added: string[] = [];
  const changed: string[] = [];
  for (const [k, v] of expected) {
    if (!diskKeys.has(k)) {
      added.push(k);
      continue;
    }
    let line: string;
    try {
      line = encodeEnvFile([{ key: k, value: v }], dialect, { file });
    } catch {
      changed.push(k);
      continue;
    }
    if (!(disk.startsWith(line) || disk.includes("\n" + line))) changed.push(k);
  }
  const removed = [...diskKeys].filter((k) => !expected.has(k));
  return { added, removed, changed };
}

function jsonDrift(expected: Map<string, unknown>, disk: string) {
  let obj: Record<string, unknown>;
  try {
    obj = JSON.parse(disk) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (!obj || typeof obj !== "object" || Array.isArray(obj)) return null;
  return diffKeys(obj, Object.fromEntries(expected), (a, b) => JSON.stringify(a) === JSON.stringify(b));
}

/** Walk public/ for files no layout entry owns and for temp files. */
async function walkPublic(root: string, owned: Set<string>, f: Findings): Promise<void> {
  const visit = async (rel: string) => {
    let names: string[];
    try {
      names = await readdir(path.join(root, rel));
    } catch {
      return;
    }
    for (const n of names.sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const st = await lstat(path.join(root, r));
      if (st.isDirectory()) {
        if ((st.mode & 0o7777) !== DIR_MODE) f.add("mode", "error", r + "/", `directory mode is ${modeText(st.mode & 0o7777)}, expected 0755`);
        await visit(r);
      } else if (n.startsWith(TEMP_PREFIX)) {
        f.add("temp-file", "warning", r, "a temp file left by an interrupted run (the next sync removes it)");
      } else if (!owned.has(r)) {
        f.add("orphan", "warning", r, "no layout entry owns this file");
      }
    }
  };
  await visit("");
}

/** Host exposure: every ancestor of public/ lets other local users traverse it. */
async function hostExposure(publicDir: string, f: Findings): Promise<void> {
  const chain: string[] = [];
  for (let d = path.dirname(publicDir); ; d = path.dirname(d)) {
    chain.push(d);
    if (d === path.dirname(d)) break;
  }
  const modes: Array<[string, number]> = [];
  for (const d of chain) {
    try {
      modes.push([d, (await stat(d)).mode & 0o7777]);
    } catch {
      return;
    }
  }
  const closed = modes.find(([, m]) => (m & 0o001) === 0);
  if (closed) {
    f.add("host-exposure", "ok", "public/", `not readable by other local users: ${closed[0]} is ${modeText(closed[1])}`);
  } else {
    const root = path.dirname(publicDir);
    f.add("host-exposure", "warning", "public/", `every directory above public/ lets other local users in, so any local user can read the secrets; close ${root} (chmod 700 ${root}; Docker, as root, can still bind-mount it)`);
  }
}

async function agentOnlyChecks(layout: ResolvedLayout, f: Findings): Promise<void> {
  let st;
  try {
    st = await lstat(layout.agentDir);
  } catch {
    f.add("agent-only", "error", "agent-only/", `${layout.agentDir} does not exist`);
    return;
  }
  if ((st.mode & 0o777) !== 0o700) f.add("agent-only", "error", "agent-only/", `mode is ${modeText(st.mode & 0o7777)}, expected 0700`);
  const approle = new Set([layout.approle.roleIdFile, layout.approle.secretIdFile]);
  for (const n of await readdir(layout.agentDir)) {
    const p = path.join(layout.agentDir, n);
    if (approle.has(p)) continue; // reported by approleChecks
    const s = await lstat(p);
    if (s.isFile() && (s.mode & 0o077) !== 0) f.add("agent-only", "error", `agent-only/${n}`, `mode is ${modeText(s.mode & 0o7777)}, expected 0600`);
  }
}

/** The AppRole files: readable and private, even while a cached token makes a login unneeded. */
async function approleChecks(layout: ResolvedLayout, f: Findings): Promise<void> {
  for (const s of await inspectAppRoleFiles(layout)) {
    const problem = appRoleFileProblem(s);
    if (problem) f.add("approle", "error", s.rel, problem);
    else if (s.expected) f.add("approle", "ok", s.rel, "absent, as removeSecretIdFile asks after a login (put a new secret_id there before the token's max TTL ends)");
    if (openMode(s.mode)) f.add("approle", "error", s.rel, `mode is ${appRoleModeText(s.mode ?? 0)}, expected 0600: other users can read it (the next sync sets 0600)`);
    else if (!problem && !s.expected) f.add("approle", "ok", s.rel, `readable, mode ${appRoleModeText(s.mode ?? 0)}`);
  }
}

async function certificateChecks(layout: ResolvedLayout, state: State, opts: CheckOptions, f: Findings): Promise<void> {
  const now = opts.clock.now();
  for (const o of layout.outputs) {
    if (isFileOutput(o)) continue;
    const id = outputId(o);
    const parts = pkiFiles(o);
    const leafRel = parts.cert ?? parts.fullchain;
    if (!leafRel) continue;
    const leaf = await readLeaf(layout.publicDir, parts);
    if (typeof leaf === "string") {
      f.add("certificate", "error", id, leaf === "missing" ? "no certificate on disk" : "the certificate on disk cannot be parsed");
      continue;
    }
    const notAfter = Date.parse(leaf.validTo);
    const days = ((notAfter - now) / 86_400_000).toFixed(1);
    if (notAfter <= now) f.add("certificate", "error", id, `expired on ${new Date(notAfter).toISOString()} (serial ${leaf.serialNumber})`);
    else if (notAfter - now < opts.minValidityMs) f.add("certificate", "error", id, `expires in ${days} days (${new Date(notAfter).toISOString()}), below --min-validity (serial ${leaf.serialNumber})`);
    else f.add("certificate", "ok", id, `valid for ${days} more days (serial ${leaf.serialNumber})`);
    const recorded = state.pki[id];
    if (recorded && recorded.serial !== leaf.serialNumber) {
      f.add("drift", "error", id, `the certificate on disk (serial ${leaf.serialNumber}) is not the one vault-render issued (serial ${recorded.serial}, expires ${new Date(recorded.notAfter).toISOString()})`);
    }
    if (parts.key) {
      try {
        const ok = leaf.checkPrivateKey(createPrivateKey(await readFile(path.join(layout.publicDir, parts.key))));
        if (!ok) f.add("certificate", "error", id, "the key on disk does not match the certificate");
      } catch {
        f.add("certificate", "error", id, "the key on disk is missing or cannot be parsed");
      }
    }
    await setFileChecks(layout, o, state, f);
  }
}

/** Every file of a set (ca.pem and fullchain.pem too) against what its recorded issue implies. */
async function setFileChecks(layout: ResolvedLayout, o: PkiOutput, state: State, f: Findings): Promise<void> {
  const id = outputId(o);
  const hmacKey = await readPrivate(new StateStore(layout.agentDir).keyFile).catch(() => null);
  const exp = await expectedSet(layout.publicDir, o, state.pki[id], state.outputs, hmacKey && hmacKey.length >= 32 ? hmacKey : null);
  if ("reissue" in exp) {
    f.add("certificate", "error", id, `the set cannot be rebuilt from its recorded issue: ${exp.reissue} (the next sync re-issues it)`);
    return;
  }
  for (const p of await inspectSet(layout.publicDir, o, exp)) {
    // Modes, symlinks and missing files are reported per file by fileModeChecks.
    const rest = p.problems.filter((x) => !x.startsWith("mode ") && x !== "missing" && !p.unsafe);
    if (rest.length) f.add("certificate", "error", p.rel, `${rest.join(", ")} (the next sync rewrites it)`);
  }
}

async function fileModeChecks(layout: ResolvedLayout, f: Findings): Promise<void> {
  for (const o of layout.outputs) {
    for (const rel of outputFiles(o)) {
      let st;
      try {
        st = await lstat(path.join(layout.publicDir, rel));
      } catch {
        f.add("missing", "error", rel, "the file does not exist in public/");
        continue;
      }
      if (st.isSymbolicLink()) f.add("symlink", "error", rel, "is a symlink (vault-render refuses to write through it)");
      else if ((st.mode & 0o7777) !== FILE_MODE) f.add("mode", "error", rel, `mode is ${modeText(st.mode & 0o7777)}, expected 0644`);
    }
  }
}

function stateChecks(state: State, layout: ResolvedLayout, opts: CheckOptions, f: Findings): void {
  const now = opts.clock.now();
  for (const [h, p] of Object.entries(state.pendingHooks)) {
    f.add("pending-hook", "warning", `hook ${h}`, `pending since ${p.since} for ${p.files.join(", ") || "a forced run"}${p.lastError ? ` (last: ${p.lastError})` : ""}`);
  }
  for (const [name, l] of Object.entries(state.leases)) {
    if (layout.sources.get(name)?.type !== "lease") continue;
    if (l.expiresAt <= now) f.add("lease", "error", `source ${name}`, `the lease expired on ${new Date(l.expiresAt).toISOString()}`);
    else f.add("lease", "ok", `source ${name}`, `lease valid until ${new Date(l.expiresAt).toISOString()}${l.renewable ? " (renewable)" : ""}`);
  }
  for (const o of layout.outputs) {
    const e = state.outputs[outputFiles(o)[0] ?? ""]?.lastError ?? state.failures[outputId(o)];
    if (e) f.add("last-error", "warning", outputId(o), `the last sync failed here: ${e.message} (${e.at})`);
  }
  if (opts.maxAgeMs !== undefined) {
    const last = state.lastSuccessAt ? Date.parse(state.lastSuccessAt) : NaN;
    if (Number.isNaN(last)) f.add("max-age", "error", "state", "no successful sync has been recorded");
    else if (now - last > opts.maxAgeMs) f.add("max-age", "error", "state", `the last successful sync was at ${state.lastSuccessAt}, longer ago than --max-age`);
    else f.add("max-age", "ok", "state", `last successful sync at ${state.lastSuccessAt}`);
  }
}

async function vaultChecks(layout: ResolvedLayout, opts: CheckOptions, f: Findings, state: State | null): Promise<RunContext | null> {
  const silentPrint = () => undefined;
  const syncOpts = { layoutFile: opts.layoutFile, env: opts.env, dryRun: true, lockTimeoutMs: 0, log: opts.log, redactor: opts.redactor, clock: opts.clock, print: silentPrint };
  // Health first: reachable, initialized, sealed, which node answered.
  const probe = new VaultClient({ ...layout.vault, retries: 0 }, { sleep: opts.clock.sleep, random: opts.clock.random, redact: (t) => opts.redactor.redact(t) });
  let health: Record<string, unknown>;
  try {
    health = await probe.health();
  } catch (e) {
    f.add("vault.reachable", "error", "vault", (e as Error).message);
    return null;
  } finally {
    probe.close();
  }
  f.add("vault.reachable", "ok", "vault", `${layout.vault.address} answered (Vault ${typeof health.version === "string" ? health.version : "?"})`);
  if (health.initialized === false) {
    f.add("vault.initialized", "error", "vault", "Vault is not initialized");
    return null;
  }
  if (health.sealed === true) {
    f.add("vault.sealed", "error", "vault", "Vault is sealed");
    return null;
  }
  f.add("vault.sealed", "ok", "vault", "Vault is unsealed");
  if (health.standby === true) f.add("vault.node", "warning", "vault", `the node that answered is a ${health.performance_standby ? "performance " : ""}standby`);
  else f.add("vault.node", "ok", "vault", "the node that answered is the active node");
  let s: RunContext;
  try {
    s = await openRun(layout, syncOpts, true, state ?? undefined);
  } catch (e) {
    f.add("auth", "error", "auth", describeError(e));
    return null;
  }
  const ttlMs = s.auth.ttl * 1000;
  if (s.auth.ttl === 0) f.add("auth.token", "ok", "auth", "the token does not expire");
  else if (ttlMs < opts.minTokenTtlMs) f.add("auth.token", "warning", "auth", `the token has ${Math.round(s.auth.ttl / 60)} min left, below --min-token-ttl (the next sync renews it or logs in again)`);
  else f.add("auth.token", "ok", "auth", `authenticated (${s.auth.via === "login" ? "fresh AppRole login" : "cached token"}), ${Math.round(s.auth.ttl / 60)} min left`);
  const maxTtl = tokenMaxTtlWarning(layout, s.state);
  if (maxTtl) f.add("token.max-ttl", "warning", "auth", maxTtl);
  return s;
}

async function contentChecks(s: RunContext, f: Findings, state: State): Promise<void> {
  const { layout } = s;
  const { templates, needs, known: names } = await sourceNeeds(layout);
  const sources: Map<string, SourceData | Error> = await fetchStatic(s, names.filter((n) => layout.sources.get(n)?.type !== "lease"));
  const cache = await new LeaseStore(layout.agentDir).load();
  for (const n of names.filter((x) => layout.sources.get(x)?.type === "lease")) {
    const c = cache[n];
    if (c && state.leases[n]?.leaseId === c.leaseId) {
      s.opts.redactor.add(c.data);
      sources.set(n, { data: c.data });
    } else sources.set(n, new VrError("RENDER", "no current lease recorded (run sync)"));
    leaseTokenCheck(s, n, state, f);
  }
  for (const [name, r] of sources) {
    if (r instanceof Error) f.add("source", "error", `source ${name}`, describeError(r));
    else f.add("source", "ok", `source ${name}`, `readable${r.version !== undefined ? ` (version ${r.version})` : ""}`);
  }
  for (const o of layout.outputs) {
    if (!isFileOutput(o)) continue;
    const need = needs.get(outputId(o));
    if (need instanceof Error) {
      f.add("render", "error", o.file, describeError(need));
      continue;
    }
    await compareOutput(s, o, sources, templates, f);
  }
}

/** A lease dies with the token that created it: the token check holds must be that token. */
function leaseTokenCheck(s: RunContext, name: string, state: State, f: Findings): void {
  const rec = state.leases[name];
  const gone = leaseOwnerGone(rec, s.token);
  if (!rec || !gone) return;
  const subject = `source ${name}`;
  const message = `the token that created this lease (${rec.tokenId === undefined ? "not recorded" : describeAccessor(rec.tokenAccessor)}) is not the token vault-render holds now${s.auth.via === "login" ? " (the cached token is gone: revoked or expired)" : ""}; Vault revokes a lease with its token, so these credentials are dead or about to be: run sync to replace them`;
  const prev = f.list.find((x) => x.check === "lease" && x.subject === subject);
  if (prev?.severity === "error") return;
  if (prev) Object.assign(prev, { severity: "error", message });
  else f.add("lease", "error", subject, message);
}

async function compareOutput(s: RunContext, o: FileOutput, sources: SourceResults, templates: Map<string, TemplatePart[]>, f: Findings): Promise<void> {
  const { layout } = s;
  let rendered;
  try {
    rendered = await renderOutput(o, sources, layout.dir, templates);
  } catch (e) {
    if (e instanceof SourceUnavailable) return; // reported on the source
    f.add(e instanceof VrError && e.code === "MISSING_KEY" ? "missing-key" : "render", "error", o.file, describeError(e));
    return;
  }
  let disk: Buffer;
  try {
    disk = await readFile(path.join(layout.publicDir, o.file));
  } catch {
    return; // reported as missing
  }
  if (disk.equals(rendered.bytes)) {
    f.add("content", "ok", o.file, "matches what sync would render");
    return;
  }
  let keys: { added: string[]; removed: string[]; changed: string[] } | null = null;
  if (o.format === "env" && rendered.keys) keys = envDrift(rendered.keys, (o.dialect ?? "portable"), o.file, disk.toString("utf8"));
  if (o.format === "json" && rendered.keys) {
    const typed = new Map<string, unknown>(Object.entries(JSON.parse(rendered.bytes.toString("utf8")) as Record<string, unknown>));
    keys = jsonDrift(typed, disk.toString("utf8"));
  }
  if (keys) {
    f.add("drift", "error", o.file, `differs from what sync would render: ${formatKeyDiff(keys) || "formatting"}`, { keys });
  } else {
    f.add("drift", "error", o.file, `differs from what sync would render (${disk.length} bytes on disk, ${rendered.bytes.length} expected)`);
  }
}

export async function runCheck(opts: CheckOptions): Promise<CheckReport> {
  const layout = await loadLayout(opts.layoutFile, opts.env, "read");
  opts.redactor.setPublicText(layout.text);
  const f = new Findings();
  f.add("layout", "ok", "layout", `${layout.file} is valid`);
  const state = await new StateStore(layout.agentDir).load({ warn: (m) => opts.log.warn(m) }).catch(() => null);
  await agentOnlyChecks(layout, f);
  await approleChecks(layout, f);
  await fileModeChecks(layout, f);
  const owned = new Set(layout.outputs.flatMap((o) => outputFiles(o)));
  await walkPublic(layout.publicDir, owned, f);
  await hostExposure(layout.publicDir, f);
  if (state) {
    await certificateChecks(layout, state, opts, f);
    stateChecks(state, layout, opts, f);
  }
  let vaultVerified = false;
  if (!opts.offline) {
    const s = await vaultChecks(layout, opts, f, state);
    if (s) {
      try {
        if (state) {
          await contentChecks(s, f, s.state);
          vaultVerified = true;
        }
      } finally {
        s.client.close();
      }
    }
  }
  const counts = { error: 0, warning: 0, ok: 0 };
  for (const x of f.list) counts[x.severity]++;
  let exit: ExitCode = counts.error > 0 ? ExitCode.Failed : ExitCode.Ok;
  if (!opts.offline && !vaultVerified) exit = ExitCode.Unavailable;
  return { version: 1, ok: exit === ExitCode.Ok, exit, layout: layout.file, offline: opts.offline, vaultVerified, counts, findings: f.list };
}

/** The human table: one line per finding, errors and warnings first. */
export function formatReport(r: CheckReport, color: boolean): string {
  const paint = (sev: Severity, s: string) => (!color ? s : sev === "error" ? `\x1b[31m${s}\x1b[0m` : sev === "warning" ? `\x1b[33m${s}\x1b[0m` : `\x1b[32m${s}\x1b[0m`);
  const order: Record<Severity, number> = { error: 0, warning: 1, ok: 2 };
  const rows = [...r.findings].sort((a, b) => order[a.severity] - order[b.severity]);
  const label = (s: Severity) => (s === "error" ? "FAIL" : s === "warning" ? "WARN" : "ok");
  const w1 = Math.max(5, ...rows.map((x) => x.check.length));
  const w2 = Math.max(7, ...rows.map((x) => x.subject.length));
  const lines = [`${"".padEnd(4)}  ${"CHECK".padEnd(w1)}  ${"SUBJECT".padEnd(w2)}  DETAIL`];
  for (const x of rows) lines.push(`${paint(x.severity, label(x.severity).padEnd(4))}  ${x.check.padEnd(w1)}  ${x.subject.padEnd(w2)}  ${x.message}`);
  const verdict = r.exit === ExitCode.Ok ? "all good" : r.exit === ExitCode.Unavailable ? "could not verify against Vault" : "problems found";
  lines.push(`check: ${verdict}: ${count(r.counts.error, "error")}, ${count(r.counts.warning, "warning")}, ${r.counts.ok} ok${r.offline ? " (offline)" : ""}`);
  return lines.join("\n") + "\n";
}
