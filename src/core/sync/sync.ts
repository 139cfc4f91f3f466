/**
 * `sync`: authenticate, read every needed source once, render every output, write what changed
 * (atomically, 0644/0755), prune files removed from the layout, run hooks, record state.
 * Failures are isolated per output: a failed source or key leaves that output's files untouched.
 * KV secrets are read every run; certificates and leases follow their own lifecycle.
 */
import { X509Certificate } from "node:crypto";
import { chmod, lstat, unlink } from "node:fs/promises";
import path from "node:path";
import { inspectAppRoleFiles, tightenAppRoleFiles, warnAppRoleFiles } from "../vault/approle-files.js";
import type { AuthContext, AuthResult } from "../vault/auth.js";
import { authenticate, login } from "../vault/auth.js";
import type { Clock } from "../support/clock.js";
import { mapLimit } from "../support/clock.js";
import { formatDuration } from "../support/duration.js";
import { ExitCode, VrError } from "../support/errors.js";
import { describeHookFailure, runHook } from "./hooks.js";
import { commitSet, recoverJournal } from "../fs/journal.js";
import type { JournalRecords } from "../fs/journal.js";
import type { Env, ResolvedLayout } from "../layout/load.js";
import { loadLayout } from "../layout/load.js";
import { isFileOutput, outputFiles, outputId, pkiFiles } from "../layout/outputs.js";
import type { PkiPart } from "../layout/outputs.js";
import type { FileOutput, OutputSpec, PkiOutput } from "../layout/schema.js";
import type { LeaseSpec } from "../vault/leases.js";
import { LeaseStore, decideLease, resolveLease, revokeLease } from "../vault/leases.js";
import { Lock, processAlive } from "../fs/lock.js";
import type { Logger } from "../support/log.js";
import type { Redactor } from "../support/redact.js";
import { issueSet, pkiDueReason, pkiRequestHash } from "../vault/pki.js";
import type { Rendered, SourceResults } from "../render/index.js";
import { SourceUnavailable, renderOutput, sourceNeeds } from "../render/index.js";
import type { TemplatePart } from "../render/template.js";
import type { SourceData, StaticSource } from "../vault/kv.js";
import { kvContext, readSource } from "../vault/kv.js";
import type { OutputState, State } from "../state/state.js";
import { StateStore, keyedHash } from "../state/state.js";
import type { CurrentToken } from "../vault/token-horizon.js";
import { recordToken, tokenMaxTtlWarning } from "../vault/token-horizon.js";
import { VaultClient, VaultRequestError } from "../vault/client.js";
import type { WriteFault } from "../fs/writer.js";
import type { DirHandle } from "../fs/writer.js";
import { DIR_MODE, FILE_MODE, PRIVATE_DIR_MODE, cleanStaleTemps, cleanStaleTempsInTree, fixDirModes, lstatIn, openDirChain, prepareTemp, readCurrent, removeOwnedFile, splitRel, syncDirs, writeInTree } from "../fs/writer.js";
import { expectedSet, inspectSet } from "./pki-set.js";
import { checkOutputPath } from "../fs/paths.js";

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
  /** Aborted to stop waiting for the lock (watch being stopped). */
  signal?: AbortSignal;
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
  /** Failed after something had changed (a certificate issued, part of a set renamed). */
  afterChange?: boolean;
}

export interface SyncResult {
  exit: ExitCode;
  results: OutputResult[];
  requests: number;
  auth: AuthResult["via"];
  hookFailures: string[];
}

/** Check agent-only/ exists as a real directory; keep it 0700. */
export async function prepareAgentDir(layout: ResolvedLayout, log: Logger, readOnly = false): Promise<void> {
  let st;
  try {
    st = await lstat(layout.agentDir);
  } catch {
    throw new VrError("AGENT_DIR", `agent-only directory ${layout.agentDir} does not exist`, {
      hint: "create it (mkdir -m 700) and put the AppRole role_id and secret_id files in it",
      exit: ExitCode.Environment,
    });
  }
  if (!st.isDirectory()) {
    throw new VrError("AGENT_DIR", `agent-only path ${layout.agentDir} is not a directory; nothing was changed`, { hint: "agent-only/ must be a directory (mkdir -m 700)", exit: ExitCode.Environment });
  }
  if ((st.mode & 0o777) !== PRIVATE_DIR_MODE && readOnly) {
    log.warn({ dir: layout.agentDir }, "agent-only/ is not 0700 (a sync sets it)");
  } else if ((st.mode & 0o777) !== PRIVATE_DIR_MODE) {
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
  const added = Object.keys(after).filter((k) => !Object.hasOwn(b, k));
  const removed = Object.keys(b).filter((k) => !Object.hasOwn(after, k));
  const changed = Object.keys(after).filter((k) => Object.hasOwn(b, k) && b[k] !== after[k]);
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

/** A write refused by the local filesystem (full, read-only, not writable, I/O error). */
function localWriteFailure(e: Error | undefined): boolean {
  const errno = e instanceof VrError && e.code === "WRITE" ? (e.cause as NodeJS.ErrnoException | undefined)?.code : undefined;
  return errno !== undefined && ["ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EIO"].includes(errno);
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
}

export async function loadForRun(opts: SyncOptions): Promise<ResolvedLayout> {
  const layout = await loadLayout(opts.layoutFile, opts.env, opts.dryRun ? "read" : "write");
  opts.redactor.setPublicText(layout.text);
  if (layout.vault.skipVerify && layout.vault.address.startsWith("https:")) {
    opts.log.warn({ address: layout.vault.address }, "TLS verification of Vault is DISABLED (skip-verify): anyone on the path can read the secrets");
  }
  await prepareAgentDir(layout, opts.log, opts.dryRun);
  return layout;
}

/** Run `fn` holding agent-only/lock (not taken for dry runs, which write nothing). */
export async function withLock<T>(layout: ResolvedLayout, opts: SyncOptions, command: string, fn: () => Promise<T>): Promise<T> {
  const lock = opts.dryRun
    ? null
    : await Lock.acquire(path.join(layout.agentDir, "lock"), command, opts.lockTimeoutMs, {
        now: opts.clock.now,
        sleep: opts.clock.sleep,
        isAlive: processAlive,
        signal: opts.signal,
        onWait: (holder) => opts.log.info({ holder }, `waiting for the lock held by ${holder}`),
        onBreak: (holder, reason) => opts.log.info({ holder, reason }, `removed the stale lock of ${holder}: ${reason}`),
      });
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
    const state = await store.load({ warn: (m) => log.warn(m), keepAside: true });
    Object.assign(state.pki, records.pki ?? {});
    Object.assign(state.outputs, records.outputs ?? {});
    await store.save(state);
  });
  if (rolled) log.warn({ count: rolled }, `completed an interrupted certificate set commit (${rolled} files)`);
}

/** `readOnly` (check, and every dry run): nothing is written to agent-only/ — no token, no state.key. */
export async function openSession(layout: ResolvedLayout, opts: SyncOptions, readOnly = opts.dryRun, loaded?: State): Promise<Session> {
  const store = new StateStore(layout.agentDir);
  // `loaded`: the state the caller already read (check), so a damaged file is read and reported once.
  const state = loaded ?? (await store.load({ warn: (m) => opts.log.warn(m), keepAside: !readOnly, now: opts.clock.now }));
  const hmacKey = await store.hmacKey({ create: !readOnly });
  const client = new VaultClient(layout.vault, {
    sleep: opts.clock.sleep,
    random: opts.clock.random,
    onRetry: (i) => opts.log.info({ path: i.path, attempt: i.attempt, waitMs: i.waitMs }, `${i.reason}; retry ${i.attempt} in ${i.waitMs} ms`),
    redact: (text) => opts.redactor.redact(text),
  });
  const authCtx: AuthContext = { layout, client, log: opts.log, redactor: opts.redactor, state, hmacKey, saveState: () => store.save(state), readOnly, now: opts.clock.now };
  // `check` reports the AppRole files itself (it writes nothing).
  const approleFiles = readOnly ? [] : await inspectAppRoleFiles(layout);
  if (!opts.dryRun) await tightenAppRoleFiles(approleFiles, opts.log);
  let auth: AuthResult;
  try {
    auth = await authenticate(authCtx);
  } catch (e) {
    client.close();
    throw e;
  }
  // A cached token hides a file the next login needs until the token's max TTL: say so now.
  if (auth.via !== "login") warnAppRoleFiles(approleFiles, opts.log);
  const token = recordToken(state, hmacKey, auth);
  return { layout, opts, client, state, store, leases: new LeaseStore(layout.agentDir), hmacKey, authCtx, auth, token };
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

/**
 * A lease dies with the token that created it. When this run is about to read new leased
 * credentials of a life `ttlMs` and its token has a known hard end (the max TTL) before that,
 * log in first: otherwise the new credentials die with the old token, and the run that logs in
 * replaces them again (a second set of credentials and a second hook run for nothing).
 * Returns the new token, or undefined when the current one is kept.
 */
async function loginIfTokenEndsWithin(s: Session, ttlMs: number): Promise<CurrentToken | undefined> {
  // Only a known hard end counts (the max TTL): a renewable token's expiry moves with renewals.
  const goneBy = s.state.token?.id === s.token.id ? (s.state.token.maxExpiresAt ?? null) : null;
  // A token from a login of this run is as fresh as a login can make it.
  if (s.opts.dryRun || s.authCtx.readOnly || s.token.loggedIn || goneBy === null || ttlMs <= 0) return undefined;
  const now = s.opts.clock.now();
  if (goneBy >= now + ttlMs) return undefined;
  s.opts.log.info(`logging in before reading new leased credentials: the current token is gone in ${formatDuration(Math.max(0, goneBy - now))}, before them`);
  try {
    s.auth = await login(s.authCtx);
  } catch (e) {
    // The current token still serves this run; the credentials are replaced again after a login.
    s.opts.log.warn({ code: errorCode(e as Error) }, `could not log in before reading new credentials: ${describeError(e as Error)}; reading them with the current token`);
    return undefined;
  }
  s.token = recordToken(s.state, s.hmacKey, s.auth);
  return s.token;
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
        freshToken: (ttlMs) => loginIfTokenEndsWithin(s, ttlMs),
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
    // public/ directories are opened without following links (a symlinked one is never entered).
    const publicDirs = outputDirRels(layout);
    const n = (await cleanStaleTempsInTree(layout.publicDir, publicDirs)) + (await cleanStaleTemps(privateDirs, { skipLiveWriters: true }));
    if (n) log.info({ count: n }, `removed ${n} temp files left by an interrupted run`);
    await fixPublicDirModes(layout, publicDirs, log);
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
  for (const [i, rs] of (await syncOutputs(s, forces, needs, sources, templates, dirsToSync)).entries()) {
    const o = layout.outputs[i] as OutputSpec;
    results.push(...rs);
    const changed = rs.filter((r) => r.action === "create" || r.action === "update").map((r) => r.file);
    if (changed.length) changedFiles.set(outputId(o), changed);
  }

  // Prune files removed from the layout, but only files vault-render itself wrote.
  const current = new Set(layout.outputs.flatMap((o) => outputFiles(o)));
  for (const file of Object.keys(state.outputs)) {
    if (current.has(file)) continue;
    const r = await pruneOne(s, file, dirsToSync);
    if (r) results.push(r);
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
      const run = await runHook(name, spec, p.files, { env: opts.env, cwd: layout.dir, log, redactor: opts.redactor, clock: opts.clock });
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
    // Nothing written and every failure was public/ refusing the write (full, read-only, not writable).
    if (exit === ExitCode.Failed && changed.length === 0 && failed.every((r) => !r.afterChange && localWriteFailure(r.error))) exit = ExitCode.Environment;
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
  // Redacted before it is stored: `status` prints it (cut) with no redactor of its own.
  const rec = { code: errorCode(e), message: s.opts.redactor.redact(describeError(e)), at: new Date(s.opts.clock.now()).toISOString() };
  const prev = s.state.outputs[id];
  if (prev) prev.lastError = rec;
  else s.state.failures[id] = rec;
}

/**
 * Every output of the layout, results indexed by its position. Runs of consecutive file outputs
 * are compared and written `vault.concurrency` at a time (as the reads are); what each records in
 * the state is applied after its run, in layout order, so the state, the logs and the summary do
 * not depend on which write finished first. A PKI output runs alone between those runs: it
 * commits through the one journal in agent-only/ and saves the state with the outputs before it
 * recorded, as a serial pass would.
 */
async function syncOutputs(
  s: Session,
  forces: Forces,
  needs: Map<string, string[] | Error>,
  sources: SourceResults,
  templates: Map<string, TemplatePart[]>,
  dirsToSync: Set<string>,
): Promise<OutputResult[][]> {
  const outputs = s.layout.outputs;
  const out = new Array<OutputResult[]>(outputs.length);
  let i = 0;
  while (i < outputs.length) {
    const first = outputs[i] as OutputSpec;
    if (!isFileOutput(first)) {
      out[i] = await syncPki(s, first, forces.pki.has(outputId(first)), dirsToSync);
      i++;
      continue;
    }
    let end = i;
    while (end < outputs.length && isFileOutput(outputs[end] as OutputSpec)) end++;
    const run = outputs.slice(i, end) as FileOutput[];
    // syncFileOutput never rejects (every failure is its output's result), so no write is left
    // running behind a rejected mapLimit.
    // Every write adds its directories to the one set (a failed write's too: it may have made
    // some); they are fsynced once after all writes, in whatever order they were added.
    const done = await mapLimit(run, s.layout.vault.concurrency, (o) => syncFileOutput(s, o, needs.get(outputId(o)) ?? [], sources, templates, dirsToSync));
    for (const [k, d] of done.entries()) {
      d.record();
      out[i + k] = [d.result];
    }
    i = end;
  }
  return out;
}

/** A file output compared (and written when it changed); `record` applies it to the state. */
interface FileOutcome {
  result: OutputResult;
  record: () => void;
}

/**
 * Render, compare and write one file output. Runs alongside other outputs: the only shared thing
 * it changes is the set of directories to fsync (the state is changed by `record`, in layout order).
 */
async function syncFileOutput(
  s: Session,
  o: FileOutput,
  need: string[] | Error,
  sources: SourceResults,
  templates: Map<string, TemplatePart[]>,
  dirsToSync: Set<string>,
): Promise<FileOutcome> {
  const { layout, state, hmacKey, opts } = s;
  const file = outputId(o);
  const prev: OutputState | undefined = state.outputs[file];
  const fail = (e: Error): FileOutcome => ({ result: { file, action: "failed", error: e }, record: () => recordFailure(s, file, e) });
  if (need instanceof Error) return fail(need);

  let rendered: Rendered;
  try {
    rendered = await renderOutput(o, sources, layout.dir, templates);
  } catch (e) {
    if (opts.dryRun && e instanceof SourceUnavailable && e.error instanceof DryRunPending) {
      return { result: { file, action: prev ? "update" : "create", note: e.error.message }, record: () => undefined };
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
  const record = () => {
    if (opts.dryRun) return;
    const writtenAt = r.action === "unchanged" && prev ? prev.writtenAt : new Date(opts.clock.now()).toISOString();
    state.outputs[file] = { hash: keyedHash(hmacKey, rendered.bytes), size: rendered.bytes.length, keys: keyHashes, sources: sourceVersions, writtenAt, lastError: null };
    delete state.failures[file];
  };
  return { result: r, record };
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
    await writeInTree(layout.publicDir, file, bytes, FILE_MODE, DIR_MODE, dirsToSync, opts.writeFault);
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
    // Not due: every file is checked against the recorded issue and rebuilt by temp + rename
    // when it differs; re-issued only when something cannot be rebuilt without a secret.
    const repaired = await repairPki(s, o, dirsToSync);
    if ("results" in repaired) return repaired.results;
    reason = repaired.reissue;
  }
  if (opts.dryRun) {
    return Object.values(parts).map((rel) => ({ file: rel, action: state.outputs[rel] ? "update" : "create", note: `issue a new certificate (${reason})` }) as OutputResult);
  }
  let issued = false;
  try {
    const set = await issueSet(s.client, o);
    issued = true;
    opts.redactor.add(set.privateKey);
    const entries = Object.entries(parts) as Array<[PkiPart, string]>;
    // Every file of a set is in its directory: one handle, opened without following links, so
    // the temps and the renames all happen in the directory that was verified.
    const dir = (await openDirChain(layout.publicDir, splitRel(entries[0]?.[1] ?? id)[0], { create: { mode: DIR_MODE, changed: dirsToSync }, fixMode: DIR_MODE })) as DirHandle;
    try {
      const renames: Array<[string, string]> = [];
      const via: Array<[string, string]> = [];
      try {
        for (const [part, rel] of entries) {
          const name = splitRel(rel)[1];
          await lstatIn(dir, name); // refuses a planted symlink
          const abs = path.join(dir.real, name);
          const tmp = await prepareTemp(abs, set.files[part] as Buffer, FILE_MODE, opts.writeFault, dir.path);
          via.push([tmp, path.join(dir.path, name)]);
          renames.push([path.join(dir.real, path.basename(tmp)), abs]);
        }
      } catch (e) {
        await Promise.all(via.map(([tmp]) => unlink(tmp).catch(() => undefined)));
        throw e;
      }
      const before = state.pki[id];
      const hadOutputs = new Set(entries.map(([, rel]) => rel).filter((rel) => state.outputs[rel]));
      const at = new Date(opts.clock.now()).toISOString();
      // The new set's state records travel in the commit journal and are saved before the journal
      // is removed: a crash after the renames must not leave a valid certificate without a record
      // (the next run would re-issue it).
      const records: JournalRecords = { pki: { [id]: { serial: set.serial, notAfter: set.notAfter, notBefore: set.notBefore, requestHash: reqHash, issuedAt: at, cert: set.cert, chain: set.chain } }, outputs: {} };
      for (const [part, rel] of entries) {
        const bytes = set.files[part] as Buffer;
        (records.outputs as Record<string, OutputState>)[rel] = { hash: keyedHash(hmacKey, bytes), size: bytes.length, sources: {}, writtenAt: at, lastError: null };
      }
      // A rename that fails midway: the state records only the files actually replaced, and the
      // new certificate's record only if the certificate itself was replaced; the next run
      // rebuilds the rest from that record (or re-issues when the key on disk is the old one).
      const leafRel = parts.cert ?? parts.fullchain;
      const partial = (done: string[]): JournalRecords => {
        const doneRel = new Set(entries.filter(([, rel]) => done.includes(path.join(dir.real, splitRel(rel)[1]))).map(([, rel]) => rel));
        return {
          pki: leafRel && doneRel.has(leafRel) ? records.pki : {},
          outputs: Object.fromEntries(Object.entries(records.outputs ?? {}).filter(([rel]) => doneRel.has(rel))),
        };
      };
      await commitSet(
        layout.agentDir,
        renames,
        records,
        async (applied) => {
          Object.assign(state.pki, applied.pki);
          Object.assign(state.outputs, applied.outputs);
          if (applied === records) delete state.failures[id];
          await s.store.save(state);
        },
        { via, fault: opts.writeFault, partial },
      );
      dirsToSync.add(dir.real);
      const note = `serial ${before?.serial ?? "-"} -> ${set.serial}, expires ${new Date(set.notAfter).toISOString()} (${reason})`;
      opts.log.info({ output: id, serial: set.serial }, `issued a certificate for ${id}: ${note}`);
      return entries.map(([, rel]) => ({ file: rel, action: hadOutputs.has(rel) && before ? "update" : "create", note }) as OutputResult);
    } finally {
      await dir.close();
    }
  } catch (e) {
    recordFailure(s, id, e as Error);
    return [{ file: id, action: "failed", error: e as Error, afterChange: issued }];
  }
}

/**
 * A set that is not due: each file is compared with what the recorded issue implies and, when
 * its bytes, its mode or its link count are wrong, rewritten by temp + rename (never chmod'ed in
 * place: a hard link would carry the chmod out of public/). Gives the reason to re-issue instead
 * when the set cannot be rebuilt from disk and state.
 */
async function repairPki(s: Session, o: PkiOutput, dirsToSync: Set<string>): Promise<{ results: OutputResult[] } | { reissue: string }> {
  const { layout, state, opts, hmacKey } = s;
  const id = outputId(o);
  const exp = await expectedSet(layout.publicDir, o, state.pki[id], state.outputs, hmacKey);
  if ("reissue" in exp) return exp;
  const bad = new Map((await inspectSet(layout.publicDir, o, exp)).map((p) => [p.rel, p]));
  const at = new Date(opts.clock.now()).toISOString();
  const results: OutputResult[] = [];
  for (const [part, rel] of Object.entries(pkiFiles(o)) as Array<[PkiPart, string]>) {
    const p = bad.get(rel);
    const bytes = exp.files[part];
    if (!p || !bytes) {
      results.push({ file: rel, action: "unchanged" });
      continue;
    }
    if (!opts.dryRun) {
      try {
        await writeInTree(layout.publicDir, rel, bytes, FILE_MODE, DIR_MODE, dirsToSync, opts.writeFault);
      } catch (e) {
        recordFailure(s, id, e as Error);
        results.push({ file: rel, action: "failed", error: e as Error });
        continue;
      }
      state.outputs[rel] = { hash: keyedHash(hmacKey, bytes), size: bytes.length, sources: {}, writtenAt: at, lastError: null };
    }
    const modeOnly = p.problems.length === 1 && p.problems[0]?.startsWith("mode ");
    results.push({ file: rel, action: "update", modeFixed: modeOnly, note: `rebuilt from the recorded issue (${p.problems.join(", ")})` });
  }
  // Record the set's public parts, so the next repair needs no derivation.
  const rec = state.pki[id];
  if (!opts.dryRun && rec && (rec.cert !== exp.cert || rec.chain !== exp.chain) && new X509Certificate(exp.cert).serialNumber === rec.serial) {
    rec.cert = exp.cert;
    rec.chain = exp.chain;
  }
  return { results };
}

/** public/ and the directory of every output file, relative to public/ ("" is public/ itself). */
function outputDirRels(layout: ResolvedLayout): Set<string> {
  return new Set(["", ...layout.outputs.flatMap((o) => outputFiles(o).map((f) => splitRel(f)[0]))]);
}

/** Every directory vault-render owns in public/ (those on the way to an output) is 0755. */
async function fixPublicDirModes(layout: ResolvedLayout, dirRels: Iterable<string>, log: Logger): Promise<void> {
  for (const { dir, from } of await fixDirModes(layout.publicDir, dirRels, DIR_MODE)) {
    log.info({ dir }, `set directory ${dir} to mode 0755 (it was ${from.toString(8).padStart(4, "0")})`);
  }
}

/**
 * Prune one file that left the layout: only a path that is valid for an output, only through
 * real directories inside public/, only a regular file that still has the bytes vault-render
 * recorded. A record with an invalid path is dropped; a file changed by hand is kept. Both warn.
 */
async function pruneOne(s: Session, file: string, dirsToSync: Set<string>): Promise<OutputResult | null> {
  const { layout, state, opts } = s;
  const rec = state.outputs[file];
  const problem = checkOutputPath(file);
  if (problem || !rec) {
    opts.log.warn({ file: JSON.stringify(file) }, `ignoring the state record for ${JSON.stringify(file)}: its path ${problem ?? "has no record"}; nothing was deleted`);
    if (!opts.dryRun) delete state.outputs[file];
    return null;
  }
  try {
    const res = await removeOwnedFile(layout.publicDir, file, (b) => keyedHash(s.hmacKey, b) === rec.hash, opts.dryRun);
    if (res === "modified") {
      opts.log.warn({ file }, `kept ${file}: it left the layout but was changed since vault-render wrote it; delete it by hand if it is not needed`);
      if (!opts.dryRun) delete state.outputs[file];
      return { file, action: "unchanged", note: "kept: changed since vault-render wrote it" };
    }
    if (!opts.dryRun) {
      dirsToSync.add(path.dirname(path.join(layout.publicDir, file)));
      delete state.outputs[file];
    }
    return { file, action: "delete" };
  } catch (e) {
    return { file, action: "failed", error: e as Error };
  }
}
