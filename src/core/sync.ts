/**
 * `sync`: authenticate, read every needed source once, render every output, write what changed
 * (atomically, 0644/0755), prune files removed from the layout, run hooks, record state.
 * Failures are isolated per output: a failed source or key leaves that output's files untouched.
 * KV secrets are read every run; certificates and leases follow their own lifecycle.
 */
import { chmod, lstat, unlink } from "node:fs/promises";
import path from "node:path";
import type { AuthContext, AuthResult } from "./auth.js";
import { authenticate, login } from "./auth.js";
import type { Clock } from "./clock.js";
import { mapLimit } from "./clock.js";
import { ExitCode, VrError } from "./errors.js";
import { describeHookFailure, runHook } from "./hooks.js";
import { commitSet, recoverJournal } from "./journal.js";
import type { JournalRecords } from "./journal.js";
import type { Env, ResolvedLayout } from "./layout/load.js";
import { loadLayout } from "./layout/load.js";
import { isFileOutput, outputFiles, outputId, pkiFiles } from "./layout/outputs.js";
import type { PkiPart } from "./layout/outputs.js";
import type { FileOutput, PkiOutput } from "./layout/schema.js";
import type { LeaseSpec } from "./leases.js";
import { LeaseStore, decideLease, resolveLease, revokeLease } from "./leases.js";
import { Lock, processAlive } from "./lock.js";
import type { Logger } from "./log.js";
import type { Redactor } from "./redact.js";
import { issueSet, pkiDueReason, pkiRequestHash } from "./pki.js";
import type { Rendered, SourceResults } from "./render/index.js";
import { SourceUnavailable, renderOutput, sourceNeeds } from "./render/index.js";
import type { TemplatePart } from "./render/template.js";
import type { SourceData, StaticSource } from "./sources.js";
import { kvContext, readSource } from "./sources.js";
import type { OutputState, State } from "./state.js";
import { StateStore, keyedHash } from "./state.js";
import type { CurrentToken } from "./token-horizon.js";
import { recordToken, tokenMaxTtlWarning } from "./token-horizon.js";
import { VaultClient, VaultRequestError } from "./vault/client.js";
import type { WriteFault } from "./writer.js";
import { DIR_MODE, FILE_MODE, PRIVATE_DIR_MODE, atomicWrite, cleanStaleTemps, ensureDirChain, prepareTemp, readCurrent, removeFile, syncDirs } from "./writer.js";

export interface SyncOptions {
  layoutFile: string;
  env: Env;
  dryRun: boolean;
  lockTimeoutMs: number;
  log: Logger;
  redactor: Redactor;
  clock: Clock;
  /** Where the dry-run plan goes (stdout). */
  print: (line: string) => void;
  writeFault?: WriteFault;
  /** Leave hooks pending instead of running them. */
  noHooks?: boolean;
  /** Run every hook of the layout, changed or not. */
  runHooks?: boolean;
}

/** What `rotate` forces on top of a normal pass. */
export interface Forces {
  /** PKI outputs (by id) to re-issue. */
  pki: Set<string>;
  /** Lease sources to replace. */
  leases: Set<string>;
}

export type Action = "create" | "update" | "unchanged" | "delete" | "failed";

export interface OutputResult {
  file: string;
  action: Action;
  error?: VrError | Error;
  keysAdded?: string[];
  keysRemoved?: string[];
  keysChanged?: string[];
  sizeBefore?: number;
  sizeAfter?: number;
  modeFixed?: boolean;
  /** For PKI sets: why it was (or would be) issued, and the serials. */
  note?: string;
}

export interface SyncResult {
  exit: ExitCode;
  results: OutputResult[];
  requests: number;
  auth: AuthResult["via"];
  hookFailures: string[];
}

/** Check agent-only/ exists as a real directory; keep it 0700. */
export async function prepareAgentDir(layout: ResolvedLayout, log: Logger): Promise<void> {
  let st;
  try {
    st = await lstat(layout.agentDir);
  } catch {
    throw new VrError("AGENT_DIR", `agent-only directory ${layout.agentDir} does not exist`, {
      hint: "create it (mkdir -m 700) and put the AppRole role_id and secret_id files in it",
      exit: ExitCode.Usage,
    });
  }
  if (!st.isDirectory()) {
    throw new VrError("AGENT_DIR", `agent-only path ${layout.agentDir} is not a directory`, { exit: ExitCode.Usage });
  }
  if ((st.mode & 0o777) !== PRIVATE_DIR_MODE) {
    try {
      await chmod(layout.agentDir, PRIVATE_DIR_MODE);
      log.info({ dir: layout.agentDir }, "set agent-only/ to mode 0700");
    } catch {
      log.warn({ dir: layout.agentDir }, "agent-only/ is not 0700 and its mode cannot be changed");
    }
  }
}

function keyDiff(before: Record<string, string> | undefined, after: Record<string, string> | undefined) {
  if (!after) return {};
  const b = before ?? {};
  const added = Object.keys(after).filter((k) => !(k in b));
  const removed = Object.keys(b).filter((k) => !(k in after));
  const changed = Object.keys(after).filter((k) => k in b && b[k] !== after[k]);
  return { keysAdded: added, keysRemoved: removed, keysChanged: changed };
}

export function describePlan(r: OutputResult): string {
  const parts = [`${r.action.padEnd(9)} ${r.file}`];
  const keys = [...(r.keysAdded ?? []).map((k) => `+${k}`), ...(r.keysRemoved ?? []).map((k) => `-${k}`), ...(r.keysChanged ?? []).map((k) => `~${k}`)];
  if (keys.length) parts.push(`keys: ${keys.join(" ")}`);
  if ((r.action === "create" || r.action === "update") && r.sizeAfter !== undefined) parts.push(`${r.sizeBefore ?? 0} -> ${r.sizeAfter} bytes`);
  if (r.modeFixed) parts.push("mode -> 0644");
  if (r.note) parts.push(r.note);
  if (r.error) parts.push(`error: ${describeError(r.error)}`);
  return parts.join("  ");
}

export function describeError(e: Error | undefined): string {
  if (!e) return "failed";
  if (e instanceof SourceUnavailable) return `source "${e.source}": ${describeError(e.error)}`;
  const hint = e instanceof VrError && e.hint ? ` (hint: ${e.hint})` : "";
  return e.message + hint;
}

/** Dry run: a source whose data would only exist after a real run (new leased credentials). */
class DryRunPending extends Error {}

/** An authenticated session over one layout, under the lock. */
export interface Session {
  layout: ResolvedLayout;
  opts: SyncOptions;
  client: VaultClient;
  state: State;
  store: StateStore;
  leases: LeaseStore;
  hmacKey: Buffer;
  authCtx: AuthContext;
  auth: AuthResult;
  /** The token this run holds, as leases record their creator (updated by a mid-run login). */
  token: CurrentToken;
  /** Directories of public/ already verified in this run. */
  checkedDirs: Set<string>;
}

export async function loadForRun(opts: SyncOptions): Promise<ResolvedLayout> {
  const layout = await loadLayout(opts.layoutFile, opts.env);
  opts.redactor.setPublicText(layout.text);
  if (layout.vault.skipVerify && layout.vault.address.startsWith("https:")) {
    opts.log.warn({ address: layout.vault.address }, "TLS verification of Vault is DISABLED (skip-verify): anyone on the path can read the secrets");
  }
  await prepareAgentDir(layout, opts.log);
  return layout;
}

/** Run `fn` holding agent-only/lock (not taken for dry runs, which write nothing). */
export async function withLock<T>(layout: ResolvedLayout, opts: SyncOptions, command: string, fn: () => Promise<T>): Promise<T> {
  const lock = opts.dryRun
    ? null
    : await Lock.acquire(path.join(layout.agentDir, "lock"), command, opts.lockTimeoutMs, { now: opts.clock.now, sleep: opts.clock.sleep, isAlive: processAlive });
  try {
    return await fn();
  } finally {
    await lock?.release();
  }
}

/**
 * Finish a certificate set commit that a crash interrupted. Runs under the lock before anything
 * talks to Vault, so a half-replaced set is repaired even while Vault is unreachable.
 */
export async function recoverInterrupted(layout: ResolvedLayout, log: Logger): Promise<void> {
  const store = new StateStore(layout.agentDir);
  const rolled = await recoverJournal(layout.agentDir, async (records) => {
    const state = await store.load();
    Object.assign(state.pki, records.pki ?? {});
    Object.assign(state.outputs, records.outputs ?? {});
    await store.save(state);
  });
  if (rolled) log.warn({ count: rolled }, `completed an interrupted certificate set commit (${rolled} files)`);
}

export async function openSession(layout: ResolvedLayout, opts: SyncOptions, readOnly = false): Promise<Session> {
  const store = new StateStore(layout.agentDir);
  const state = await store.load();
  const hmacKey = await store.hmacKey();
  const client = new VaultClient(layout.vault, {
    sleep: opts.clock.sleep,
    random: opts.clock.random,
    onRetry: (i) => opts.log.info({ path: i.path, attempt: i.attempt, waitMs: i.waitMs }, `${i.reason}; retry ${i.attempt} in ${i.waitMs} ms`),
  });
  const authCtx: AuthContext = { layout, client, log: opts.log, redactor: opts.redactor, state, hmacKey, saveState: () => store.save(state), readOnly, now: opts.clock.now };
  let auth: AuthResult;
  try {
    auth = await authenticate(authCtx);
  } catch (e) {
    client.close();
    throw e;
  }
  const token = recordToken(state, hmacKey, auth);
  return { layout, opts, client, state, store, leases: new LeaseStore(layout.agentDir), hmacKey, authCtx, auth, token, checkedDirs: new Set() };
}

export async function runSync(opts: SyncOptions): Promise<SyncResult> {
  const layout = await loadForRun(opts);
  return withLock(layout, opts, "sync", async () => {
    if (!opts.dryRun) await recoverInterrupted(layout, opts.log);
    const s = await openSession(layout, opts);
    try {
      return await syncPass(s, { pki: new Set(), leases: new Set() });
    } finally {
      s.client.close();
    }
  });
}

export async function fetchStatic(s: Session, names: string[]): Promise<Map<string, SourceData | Error>> {
  const results = new Map<string, SourceData | Error>();
  const kv = kvContext(s.layout.sources.values());
  await mapLimit(names, s.layout.vault.concurrency, async (name) => {
    const spec = s.layout.sources.get(name) as StaticSource;
    try {
      const d = await readSource(s.client, spec, s.state, kv);
      s.opts.redactor.add(d.data);
      results.set(name, d);
    } catch (e) {
      results.set(name, e instanceof Error ? e : new Error(String(e)));
    }
  });
  return results;
}

interface LeaseFetch {
  data: Map<string, SourceData | Error>;
  /** Old leases to revoke once the outputs using them are committed and their hooks ran. */
  revokes: Array<{ source: string; leaseId: string }>;
  notes: string[];
}

async function fetchLeases(s: Session, names: string[], forces: Forces): Promise<LeaseFetch> {
  const out: LeaseFetch = { data: new Map(), revokes: [], notes: [] };
  const cache = await s.leases.load();
  for (const name of names) {
    const spec = s.layout.sources.get(name) as LeaseSpec;
    const force = forces.leases.has(name);
    try {
      if (s.opts.dryRun) {
        const { decision, reason } = decideLease(spec, s.state.leases[name], cache[name], s.opts.clock.now(), force, s.token);
        if (decision !== "keep") out.notes.push(`lease     ${name}  would ${decision} (${reason})`);
        const cached = cache[name];
        if (!cached) throw new DryRunPending(`new credentials would be read from ${spec.path}`);
        s.opts.redactor.add(cached.data);
        out.data.set(name, { data: cached.data });
        continue;
      }
      const r = await resolveLease(name, spec, {
        client: s.client,
        state: s.state,
        store: s.leases,
        now: s.opts.clock.now,
        force,
        saveState: () => s.store.save(s.state),
        warn: (msg) => s.opts.log.warn(msg),
        token: s.token,
      });
      s.opts.redactor.add(r.data);
      out.data.set(name, { data: r.data });
      if (r.action !== "kept") s.opts.log.info({ source: name, action: r.action }, `lease ${name}: ${r.action}${r.reason ? ` (${r.reason})` : ""}`);
      if (r.oldLeaseId) out.revokes.push({ source: name, leaseId: r.oldLeaseId });
    } catch (e) {
      out.data.set(name, e instanceof Error ? e : new Error(String(e)));
    }
  }
  return out;
}

export async function syncPass(s: Session, forces: Forces): Promise<SyncResult> {
  const { layout, opts, state } = s;
  const { log } = opts;

  if (!opts.dryRun) {
    // Temp files of a killed run can be in public/ and in agent-only/ (token, state, leases).
    const privateDirs = new Set([layout.agentDir, path.dirname(layout.approle.roleIdFile), path.dirname(layout.approle.secretIdFile)]);
    const dirs = new Set([layout.publicDir, ...layout.outputs.flatMap((o) => outputFiles(o).map((f) => path.dirname(path.join(layout.publicDir, f))))]);
    const n = (await cleanStaleTemps(dirs)) + (await cleanStaleTemps(privateDirs, { skipLiveWriters: true }));
    if (n) log.info({ count: n }, `removed ${n} temp files left by an interrupted run`);
  }

  const { templates, needs, known } = await sourceNeeds(layout);
  const leaseNames = known.filter((n) => layout.sources.get(n)?.type === "lease");
  const staticNames = known.filter((n) => layout.sources.get(n)?.type !== "lease");

  let sources = await fetchStatic(s, staticNames);
  const invalid = [...sources].filter(([, r]) => r instanceof VaultRequestError && r.kind === "invalid-token").map(([n]) => n);
  if (invalid.length > 0) {
    log.info("the token was revoked during the run; logging in again once");
    s.auth = await login(s.authCtx);
    s.token = recordToken(s.state, s.hmacKey, s.auth);
    sources = new Map([...sources, ...(await fetchStatic(s, invalid))]);
  }
  const leaseFetch = await fetchLeases(s, leaseNames, forces);
  sources = new Map([...sources, ...leaseFetch.data]);

  const results: OutputResult[] = [];
  const dirsToSync = new Set<string>();
  /** Output id → files of it that changed this run. */
  const changedFiles = new Map<string, string[]>();
  for (const o of layout.outputs) {
    if (isFileOutput(o)) {
      const r = await syncFileOutput(s, o, needs.get(outputId(o)) ?? [], sources, templates, dirsToSync);
      results.push(r);
      if (r.action === "create" || r.action === "update") changedFiles.set(outputId(o), [r.file]);
    } else {
      const rs = await syncPki(s, o, forces.pki.has(outputId(o)), dirsToSync);
      results.push(...rs);
      const changed = rs.filter((r) => r.action === "create" || r.action === "update").map((r) => r.file);
      if (changed.length) changedFiles.set(outputId(o), changed);
    }
  }

  // Prune files removed from the layout, but only files vault-render itself wrote.
  const current = new Set(layout.outputs.flatMap((o) => outputFiles(o)));
  for (const file of Object.keys(state.outputs)) {
    if (current.has(file)) continue;
    const abs = path.join(layout.publicDir, file);
    const r: OutputResult = { file, action: "delete" };
    if (!opts.dryRun) {
      try {
        await removeFile(abs);
        dirsToSync.add(path.dirname(abs));
        delete state.outputs[file];
      } catch (e) {
        r.action = "failed";
        r.error = e as Error;
      }
    }
    results.push(r);
  }
  const ids = new Set(layout.outputs.map(outputId));
  for (const f of Object.keys(state.failures)) if (!ids.has(f) && !current.has(f)) delete state.failures[f];
  for (const id of Object.keys(state.pki)) if (!ids.has(id)) delete state.pki[id];
  // Leases of sources no longer in the layout are revoked.
  for (const [name, rec] of Object.entries(state.leases)) {
    if (layout.sources.get(name)?.type === "lease") continue;
    if (!opts.dryRun) {
      state.pendingRevokes.push({ leaseId: rec.leaseId, source: name, afterHooks: [], since: new Date(opts.clock.now()).toISOString() });
      delete state.leases[name];
    }
  }

  if (!opts.dryRun) await syncDirs(dirsToSync);

  // Hooks: recorded as pending (and saved) before they run, so a crash never loses a notification.
  const hookFailures: string[] = [];
  const hooks = layout.raw.hooks ?? {};
  const at = new Date(opts.clock.now()).toISOString();
  for (const o of layout.outputs) {
    const files = changedFiles.get(outputId(o));
    if (!files) continue;
    for (const h of o.hooks ?? []) {
      const p = state.pendingHooks[h];
      if (opts.dryRun) continue;
      state.pendingHooks[h] = { files: [...new Set([...(p?.files ?? []), ...files])], since: p?.since ?? at, attempts: p?.attempts ?? 0, lastError: p?.lastError };
    }
  }
  if (opts.runHooks && !opts.dryRun) {
    for (const h of Object.keys(hooks)) state.pendingHooks[h] ??= { files: [], since: at, attempts: 0 };
  }
  for (const { source, leaseId } of leaseFetch.revokes) {
    const users = layout.outputs.filter((o) => {
      const n = needs.get(outputId(o));
      return Array.isArray(n) && n.includes(source);
    });
    state.pendingRevokes.push({ leaseId, source, afterHooks: [...new Set(users.flatMap((o) => o.hooks ?? []))], since: at });
  }
  // Saved now only when something must survive a crash during hooks or revocations.
  if (!opts.dryRun && (Object.keys(state.pendingHooks).length > 0 || state.pendingRevokes.length > 0)) await s.store.save(state);

  // A pending hook that was removed from the layout is dropped.
  if (!opts.dryRun) for (const name of Object.keys(state.pendingHooks)) if (!hooks[name]) delete state.pendingHooks[name];
  const pendingNames = Object.keys(hooks).filter((h) => state.pendingHooks[h]);
  const hookPlan: string[] = [];
  if (opts.dryRun) {
    for (const h of Object.keys(hooks)) {
      const files = layout.outputs.filter((o) => (o.hooks ?? []).includes(h)).map(outputId).filter((id) => results.some((r) => (r.action === "create" || r.action === "update") && (r.file === id || r.file.startsWith(id + "/"))));
      if (files.length || state.pendingHooks[h]) hookPlan.push(`hook      ${h}  would run${state.pendingHooks[h] ? " (pending from an earlier run)" : ""}`);
    }
  } else if (opts.noHooks) {
    if (pendingNames.length) log.info({ hooks: pendingNames }, `hooks left pending (--no-hooks): ${pendingNames.join(", ")}`);
  } else {
    for (const name of pendingNames) {
      const p = state.pendingHooks[name];
      const spec = hooks[name];
      if (!p || !spec) continue;
      const run = await runHook(name, spec, p.files, { env: opts.env, cwd: layout.dir, log });
      if (run.ok) {
        delete state.pendingHooks[name];
        log.info({ hook: name, files: p.files }, `hook ${name} ran for ${p.files.length ? p.files.join(", ") : "a forced run"}`);
      } else {
        const msg = describeHookFailure(run, spec);
        p.attempts += 1;
        p.lastError = msg;
        hookFailures.push(msg);
        log.error({ hook: name, attempts: p.attempts }, `${msg}; it stays pending and runs again on the next sync`);
      }
      await s.store.save(state);
    }
  }

  // Revoke replaced leases whose consumers have been notified.
  if (!opts.dryRun) {
    const keep: State["pendingRevokes"] = [];
    for (const r of state.pendingRevokes) {
      if (r.afterHooks.some((h) => state.pendingHooks[h])) {
        keep.push(r);
        continue;
      }
      try {
        await revokeLease(s.client, r.leaseId);
        log.info({ source: r.source }, `revoked the replaced lease of ${r.source}`);
      } catch (e) {
        keep.push(r);
        log.warn({ source: r.source }, `could not revoke the replaced lease of ${r.source}: ${(e as Error).message}; will retry`);
      }
    }
    state.pendingRevokes = keep;
  }

  // Shown with -v (not in every cron mail): a layout whose leases outlive the token's max TTL.
  const maxTtlWarning = tokenMaxTtlWarning(layout, state);
  if (maxTtlWarning && log.isLevelEnabled("info")) log.warn(maxTtlWarning);

  const failed = results.filter((r) => r.action === "failed");
  const changed = results.filter((r) => r.action === "create" || r.action === "update" || r.action === "delete");
  let exit: ExitCode = ExitCode.Ok;
  if (failed.length) {
    const allUnavailable = failed.every((r) => {
      const e = r.error instanceof SourceUnavailable ? r.error.error : r.error;
      return e instanceof VaultRequestError && e.unavailable;
    });
    exit = allUnavailable && changed.length === 0 ? ExitCode.Unavailable : ExitCode.Failed;
  }
  if (hookFailures.length && exit === ExitCode.Ok) exit = ExitCode.Failed;
  const counts = {
    created: results.filter((r) => r.action === "create").length,
    updated: results.filter((r) => r.action === "update").length,
    unchanged: results.filter((r) => r.action === "unchanged").length,
    deleted: results.filter((r) => r.action === "delete").length,
    failed: failed.length,
  };
  const summary = `${counts.created} created, ${counts.updated} updated, ${counts.deleted} deleted, ${counts.unchanged} unchanged, ${counts.failed} failed`;

  if (opts.dryRun) {
    for (const n of leaseFetch.notes) opts.print(n);
    for (const r of results) opts.print(describePlan(r));
    for (const h of hookPlan) opts.print(h);
    opts.print(`plan: ${summary} (dry run: nothing written)`);
  } else {
    state.lastRun = { at, exit, summary };
    if (exit === ExitCode.Ok) state.lastSuccessAt = at;
    await s.store.save(state);
    for (const r of changed) log.info({ file: r.file, action: r.action, keysAdded: r.keysAdded, keysRemoved: r.keysRemoved, keysChanged: r.keysChanged }, describePlan(r));
    for (const r of failed) log.error({ file: r.file, code: errorCode(r.error) }, `${r.file}: ${describeError(r.error)}`);
    log.info({ ...counts, requests: s.client.requestCount, auth: s.auth.via, hookFailures: hookFailures.length }, `sync: ${summary} (${s.client.requestCount} Vault requests, token ${s.auth.via})`);
  }
  return { exit, results, requests: s.client.requestCount, auth: s.auth.via, hookFailures };
}

function errorCode(e: Error | undefined): string {
  const inner = e instanceof SourceUnavailable ? e.error : e;
  return inner instanceof VrError ? inner.code : "ERROR";
}

function recordFailure(s: Session, id: string, e: Error): void {
  if (s.opts.dryRun) return;
  const rec = { code: errorCode(e), message: describeError(e), at: new Date(s.opts.clock.now()).toISOString() };
  const prev = s.state.outputs[id];
  if (prev) prev.lastError = rec;
  else s.state.failures[id] = rec;
}

async function syncFileOutput(
  s: Session,
  o: FileOutput,
  need: string[] | Error,
  sources: SourceResults,
  templates: Map<string, TemplatePart[]>,
  dirsToSync: Set<string>,
): Promise<OutputResult> {
  const { layout, state, hmacKey, opts } = s;
  const file = outputId(o);
  const prev: OutputState | undefined = state.outputs[file];
  const fail = (e: Error): OutputResult => {
    recordFailure(s, file, e);
    return { file, action: "failed", error: e };
  };
  if (need instanceof Error) return fail(need);

  let rendered: Rendered;
  try {
    rendered = await renderOutput(o, sources, layout.dir, templates);
  } catch (e) {
    if (opts.dryRun && e instanceof SourceUnavailable && e.error instanceof DryRunPending) {
      return { file, action: prev ? "update" : "create", note: e.error.message };
    }
    return fail(e as Error);
  }
  const keyHashes = rendered.keys ? Object.fromEntries([...rendered.keys].map(([k, v]) => [k, keyedHash(hmacKey, `${k}\0${v}`)])) : undefined;
  const sourceVersions = Object.fromEntries(
    need.map((n) => {
      const d = sources.get(n);
      return [n, d && !(d instanceof Error) && d.version !== undefined ? { version: d.version } : {}];
    }),
  );
  const r = await writeIfChanged(s, file, rendered.bytes, keyHashes, dirsToSync);
  if (r.action === "failed") return fail(r.error as Error);
  if (!opts.dryRun) {
    const writtenAt = r.action === "unchanged" && prev ? prev.writtenAt : new Date(opts.clock.now()).toISOString();
    state.outputs[file] = { hash: keyedHash(hmacKey, rendered.bytes), size: rendered.bytes.length, keys: keyHashes, sources: sourceVersions, writtenAt, lastError: null };
    delete state.failures[file];
  }
  return r;
}

/** Compare with the file on disk; write atomically when bytes or mode differ (not in dry runs). */
async function writeIfChanged(s: Session, file: string, bytes: Buffer, keyHashes: Record<string, string> | undefined, dirsToSync: Set<string>): Promise<OutputResult> {
  const { layout, state, opts } = s;
  const abs = path.join(layout.publicDir, file);
  let current;
  try {
    current = await readCurrent(abs);
  } catch (e) {
    return { file, action: "failed", error: e as Error };
  }
  const same = current !== null && current.bytes.equals(bytes);
  const modeOk = current !== null && current.mode === FILE_MODE;
  const result: OutputResult = {
    file,
    action: current === null ? "create" : same && modeOk ? "unchanged" : "update",
    sizeBefore: current?.bytes.length,
    sizeAfter: bytes.length,
    modeFixed: same && !modeOk,
    ...(current === null || !same ? keyDiff(state.outputs[file]?.keys, keyHashes) : {}),
  };
  if (opts.dryRun || result.action === "unchanged") return result;
  try {
    const dirRel = path.posix.dirname(file);
    await ensureDirChain(layout.publicDir, dirRel === "." ? "" : dirRel, DIR_MODE, dirsToSync, s.checkedDirs);
    await atomicWrite(abs, bytes, FILE_MODE, opts.writeFault);
    dirsToSync.add(path.dirname(abs));
  } catch (e) {
    return { file, action: "failed", error: e as Error };
  }
  return result;
}

/** A PKI set: re-issued only when due (or forced), verified, then committed as one unit. */
async function syncPki(s: Session, o: PkiOutput, force: boolean, dirsToSync: Set<string>): Promise<OutputResult[]> {
  const { layout, state, opts, hmacKey } = s;
  const id = outputId(o);
  const parts = pkiFiles(o);
  const reqHash = pkiRequestHash(hmacKey, o);
  let reason: string | null;
  try {
    reason = force ? "rotation requested" : await pkiDueReason(o, layout.publicDir, opts.clock.now(), state.pki[id]?.requestHash, reqHash);
  } catch (e) {
    recordFailure(s, id, e as Error);
    return [{ file: id, action: "failed", error: e as Error }];
  }
  if (reason === null) {
    // Not due: only make sure the modes are right (content is left alone).
    const out: OutputResult[] = [];
    for (const rel of Object.values(parts)) {
      const cur = await readCurrent(path.join(layout.publicDir, rel)).catch(() => null);
      if (cur && cur.mode !== FILE_MODE && !opts.dryRun) await chmod(path.join(layout.publicDir, rel), FILE_MODE).catch(() => undefined);
      out.push({ file: rel, action: "unchanged", modeFixed: cur !== null && cur.mode !== FILE_MODE });
    }
    return out;
  }
  if (opts.dryRun) {
    return Object.values(parts).map((rel) => ({ file: rel, action: state.outputs[rel] ? "update" : "create", note: `issue a new certificate (${reason})` }) as OutputResult);
  }
  try {
    const set = await issueSet(s.client, o);
    opts.redactor.add(set.privateKey);
    const renames: Array<[string, string]> = [];
    const entries = Object.entries(parts) as Array<[PkiPart, string]>;
    try {
      for (const [part, rel] of entries) {
        const abs = path.join(layout.publicDir, rel);
        await readCurrent(abs); // refuses a planted symlink
        const dirRel = path.posix.dirname(rel);
        await ensureDirChain(layout.publicDir, dirRel === "." ? "" : dirRel, DIR_MODE, dirsToSync, s.checkedDirs);
        renames.push([await prepareTemp(abs, set.files[part] as Buffer, FILE_MODE, opts.writeFault), abs]);
      }
    } catch (e) {
      await Promise.all(renames.map(([tmp]) => unlink(tmp).catch(() => undefined)));
      throw e;
    }
    const before = state.pki[id];
    const hadOutputs = new Set(entries.map(([, rel]) => rel).filter((rel) => state.outputs[rel]));
    const at = new Date(opts.clock.now()).toISOString();
    // The new set's state records travel in the commit journal and are saved before the journal
    // is removed: a crash after the renames must not leave a valid certificate without a record
    // (the next run would re-issue it).
    const records: JournalRecords = { pki: { [id]: { serial: set.serial, notAfter: set.notAfter, notBefore: set.notBefore, requestHash: reqHash, issuedAt: at } }, outputs: {} };
    for (const [part, rel] of entries) {
      const bytes = set.files[part] as Buffer;
      (records.outputs as Record<string, OutputState>)[rel] = { hash: keyedHash(hmacKey, bytes), size: bytes.length, sources: {}, writtenAt: at, lastError: null };
    }
    await commitSet(layout.agentDir, renames, records, async () => {
      Object.assign(state.pki, records.pki);
      Object.assign(state.outputs, records.outputs);
      delete state.failures[id];
      await s.store.save(state);
    });
    const note = `serial ${before?.serial ?? "-"} -> ${set.serial}, expires ${new Date(set.notAfter).toISOString()} (${reason})`;
    opts.log.info({ output: id, serial: set.serial }, `issued a certificate for ${id}: ${note}`);
    return entries.map(([, rel]) => ({ file: rel, action: hadOutputs.has(rel) && before ? "update" : "create", note }) as OutputResult);
  } catch (e) {
    recordFailure(s, id, e as Error);
    return [{ file: id, action: "failed", error: e as Error }];
  }
}
