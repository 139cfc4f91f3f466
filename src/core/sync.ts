/**
 * `sync`: authenticate, read every needed source once, render every output, write what changed
 * (atomically, 0644/0755), prune files removed from the layout, record state. Failures are
 * isolated per output: a failed source or key leaves that output's file untouched.
 */
import { lstat } from "node:fs/promises";
import { chmod } from "node:fs/promises";
import path from "node:path";
import { authenticate, login } from "./auth.js";
import type { Clock } from "./clock.js";
import { mapLimit } from "./clock.js";
import { ExitCode, VrError } from "./errors.js";
import type { Env, ResolvedLayout } from "./layout/load.js";
import { loadLayout } from "./layout/load.js";
import type { OutputSpec } from "./layout/schema.js";
import { Lock, processAlive } from "./lock.js";
import type { Logger, Redactor } from "./log.js";
import type { Rendered, SourceResults } from "./render/index.js";
import { SourceUnavailable, outputSources, renderOutput } from "./render/index.js";
import type { TemplatePart } from "./render/template.js";
import type { SourceData } from "./sources.js";
import { readSource } from "./sources.js";
import type { OutputState, State } from "./state.js";
import { StateStore, keyedHash } from "./state.js";
import { VaultClient, VaultRequestError } from "./vault/client.js";
import type { WriteFault } from "./writer.js";
import { DIR_MODE, FILE_MODE, PRIVATE_DIR_MODE, atomicWrite, cleanStaleTemps, ensureDirChain, readCurrent, removeFile, syncDirs } from "./writer.js";

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
}

export interface SyncResult {
  exit: ExitCode;
  results: OutputResult[];
  requests: number;
  auth: "cached" | "renewed" | "login";
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
  if (r.action === "create" || r.action === "update") parts.push(`${r.sizeBefore ?? 0} -> ${r.sizeAfter ?? 0} bytes`);
  if (r.modeFixed) parts.push("mode -> 0644");
  if (r.error) parts.push(`error: ${r.error.message}`);
  return parts.join("  ");
}

interface RunContext {
  layout: ResolvedLayout;
  opts: SyncOptions;
  client: VaultClient;
  state: State;
  store: StateStore;
  hmacKey: Buffer;
}

async function fetchSources(ctx: RunContext, names: string[]): Promise<Map<string, SourceData | Error>> {
  const results = new Map<string, SourceData | Error>();
  const kvCache = new Map<string, Promise<1 | 2>>();
  await mapLimit(names, ctx.layout.vault.concurrency, async (name) => {
    const spec = ctx.layout.sources.get(name);
    if (!spec) return;
    try {
      const d = await readSource(ctx.client, spec, ctx.state, kvCache);
      ctx.opts.redactor.add(d.data);
      results.set(name, d);
    } catch (e) {
      results.set(name, e instanceof Error ? e : new Error(String(e)));
    }
  });
  return results;
}

export async function runSync(opts: SyncOptions): Promise<SyncResult> {
  const { log } = opts;
  const layout = await loadLayout(opts.layoutFile, opts.env);
  opts.redactor.setPublicText(layout.text);
  if (layout.vault.skipVerify && layout.vault.address.startsWith("https:")) {
    log.warn({ address: layout.vault.address }, "TLS verification of Vault is DISABLED (skip-verify): anyone on the path can read the secrets");
  }
  await prepareAgentDir(layout, log);
  const lock = opts.dryRun
    ? null
    : await Lock.acquire(path.join(layout.agentDir, "lock"), "sync", opts.lockTimeoutMs, { now: opts.clock.now, sleep: opts.clock.sleep, isAlive: processAlive });
  try {
    return await syncLocked(layout, opts);
  } finally {
    await lock?.release();
  }
}

async function syncLocked(layout: ResolvedLayout, opts: SyncOptions): Promise<SyncResult> {
  const { log } = opts;
  const store = new StateStore(layout.agentDir);
  const state = await store.load();
  const hmacKey = await store.hmacKey();
  const client = new VaultClient(layout.vault, {
    sleep: opts.clock.sleep,
    random: opts.clock.random,
    onRetry: (i) => log.info({ path: i.path, attempt: i.attempt, waitMs: i.waitMs }, `${i.reason}; retry ${i.attempt} in ${i.waitMs} ms`),
  });
  const ctx: RunContext = { layout, opts, client, state, store, hmacKey };
  const authCtx = { layout, client, log, redactor: opts.redactor, state, hmacKey, saveState: () => store.save(state) };
  const auth = await authenticate(authCtx);

  // Which sources each output needs (templates are parsed here, so a broken one fails alone).
  const templates = new Map<string, TemplatePart[]>();
  const needs = new Map<string, string[] | Error>();
  const wanted = new Set<string>();
  for (const o of layout.outputs) {
    try {
      const s = await outputSources(o, layout.dir, templates);
      needs.set(o.file, s);
      s.forEach((n) => wanted.add(n));
    } catch (e) {
      needs.set(o.file, e as Error);
    }
  }

  let sources = await fetchSources(ctx, [...wanted]);
  const invalid = [...sources].filter(([, r]) => r instanceof VaultRequestError && r.kind === "invalid-token").map(([n]) => n);
  if (invalid.length > 0) {
    log.info("the token was revoked during the run; logging in again once");
    await login(authCtx);
    const again = await fetchSources(ctx, invalid);
    sources = new Map([...sources, ...again]);
  }

  const results: OutputResult[] = [];
  const dirsToSync = new Set<string>();
  if (!opts.dryRun) {
    const dirs = new Set([layout.publicDir, ...layout.outputs.map((o) => path.dirname(path.join(layout.publicDir, o.file)))]);
    const n = await cleanStaleTemps(dirs);
    if (n) log.info({ count: n }, "removed temp files left by an interrupted run");
  }

  for (const o of layout.outputs) {
    results.push(await syncOutput(ctx, o, needs.get(o.file) ?? [], sources, templates, dirsToSync));
  }

  // Prune files removed from the layout, but only files vault-render itself wrote.
  const current = new Set(layout.outputs.map((o) => path.posix.normalize(o.file)));
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
  for (const f of Object.keys(state.failures)) if (!current.has(f)) delete state.failures[f];

  if (!opts.dryRun) await syncDirs(dirsToSync);

  const failed = results.filter((r) => r.action === "failed");
  const changed = results.filter((r) => r.action === "create" || r.action === "update" || r.action === "delete");
  let exit: ExitCode = ExitCode.Ok;
  if (failed.length) {
    const allUnavailable = failed.every((r) => r.error instanceof SourceUnavailable && r.error.error instanceof VaultRequestError && r.error.error.unavailable);
    exit = allUnavailable && changed.length === 0 ? ExitCode.Unavailable : ExitCode.Failed;
  }
  const counts = {
    created: results.filter((r) => r.action === "create").length,
    updated: results.filter((r) => r.action === "update").length,
    unchanged: results.filter((r) => r.action === "unchanged").length,
    deleted: results.filter((r) => r.action === "delete").length,
    failed: failed.length,
  };
  const summary = `${counts.created} created, ${counts.updated} updated, ${counts.deleted} deleted, ${counts.unchanged} unchanged, ${counts.failed} failed`;

  if (opts.dryRun) {
    for (const r of results) opts.print(describePlan(r));
    opts.print(`plan: ${summary} (dry run: nothing written)`);
  } else {
    const at = new Date(opts.clock.now()).toISOString();
    state.lastRun = { at, exit, summary };
    if (exit === ExitCode.Ok) state.lastSuccessAt = at;
    await store.save(state);
    for (const r of changed) log.info({ file: r.file, action: r.action, keysAdded: r.keysAdded, keysRemoved: r.keysRemoved, keysChanged: r.keysChanged }, describePlan(r));
    for (const r of failed) log.error({ file: r.file, code: (r.error as VrError).code ?? "ERROR" }, `${r.file}: ${describeError(r.error)}`);
    log.info({ ...counts, requests: client.requestCount, auth: auth.via }, `sync: ${summary} (${client.requestCount} Vault requests, token ${auth.via})`);
  }
  return { exit, results, requests: client.requestCount, auth: auth.via };
}

function describeError(e: Error | undefined): string {
  if (!e) return "failed";
  if (e instanceof SourceUnavailable) return `source "${e.source}": ${describeError(e.error)}`;
  const hint = e instanceof VrError && e.hint ? ` (hint: ${e.hint})` : "";
  return e.message + hint;
}

async function syncOutput(
  ctx: RunContext,
  o: OutputSpec,
  need: string[] | Error,
  sources: SourceResults,
  templates: Map<string, TemplatePart[]>,
  dirsToSync: Set<string>,
): Promise<OutputResult> {
  const { layout, state, hmacKey, opts } = ctx;
  const file = path.posix.normalize(o.file);
  const abs = path.join(layout.publicDir, file);
  const prev: OutputState | undefined = state.outputs[file];
  const fail = (e: Error): OutputResult => {
    const at = new Date(opts.clock.now()).toISOString();
    const rec = { code: e instanceof VrError ? e.code : e instanceof SourceUnavailable && e.error instanceof VrError ? e.error.code : "ERROR", message: describeError(e), at };
    if (!opts.dryRun) {
      if (prev) prev.lastError = rec;
      else state.failures[file] = rec;
    }
    return { file, action: "failed", error: e };
  };
  if (need instanceof Error) return fail(need);

  let rendered: Rendered;
  try {
    rendered = await renderOutput(o, sources, layout.dir, templates);
  } catch (e) {
    return fail(e as Error);
  }
  const keyHashes = rendered.keys ? Object.fromEntries([...rendered.keys].map(([k, v]) => [k, keyedHash(hmacKey, `${k}\0${v}`)])) : undefined;
  const sourceVersions = Object.fromEntries(need.map((n) => {
    const d = sources.get(n);
    return [n, d && !(d instanceof Error) && d.version !== undefined ? { version: d.version } : {}];
  }));

  let current;
  try {
    current = await readCurrent(abs);
  } catch (e) {
    return fail(e as Error);
  }
  const same = current !== null && current.bytes.equals(rendered.bytes);
  const modeOk = current !== null && current.mode === FILE_MODE;
  const hash = keyedHash(hmacKey, rendered.bytes);
  const result: OutputResult = {
    file,
    action: current === null ? "create" : same && modeOk ? "unchanged" : "update",
    sizeBefore: current?.bytes.length,
    sizeAfter: rendered.bytes.length,
    modeFixed: same && !modeOk,
    ...(current === null || !same ? keyDiff(prev?.keys, keyHashes) : {}),
  };
  if (opts.dryRun) return result;

  if (result.action !== "unchanged") {
    try {
      const dirRel = path.posix.dirname(file);
      await ensureDirChain(layout.publicDir, dirRel === "." ? "" : dirRel, DIR_MODE, dirsToSync);
      await atomicWrite(abs, rendered.bytes, FILE_MODE, opts.writeFault);
      dirsToSync.add(path.dirname(abs));
    } catch (e) {
      return fail(e as Error);
    }
  }
  const writtenAt = result.action === "unchanged" && prev ? prev.writtenAt : new Date(opts.clock.now()).toISOString();
  state.outputs[file] = { hash, size: rendered.bytes.length, keys: keyHashes, sources: sourceVersions, writtenAt, lastError: null };
  delete state.failures[file];
  return result;
}
