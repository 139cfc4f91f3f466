/**
 * `watch`: one long-running process instead of cron. A full pass at start, then passes when the
 * layout or a template changes (validated first: an invalid edit is reported and the last good
 * layout keeps running), when a managed file in public/ is deleted, edited or chmod'ed (restored
 * from Vault), on the KV interval (with jitter), and when a token, lease or certificate is due —
 * computed from state, not by polling everything. Failures back off exponentially with jitter up
 * to a cap. The lock is taken per pass, so manual `sync`/`rotate` runs interleave safely.
 *
 * Every wait (idle, backoff, debounce, the lock) is one Clock.sleep with an AbortSignal: a stop
 * (SIGTERM) or reload (SIGHUP) request ends it at once, and nothing polls.
 */
import { lstat, readFile } from "node:fs/promises";
import path from "node:path";
import type { Clock } from "../support/clock.js";
import { parseDuration } from "../support/duration.js";
import { ExitCode, VrError, oneLine } from "../support/errors.js";
import type { ResolvedLayout } from "../layout/load.js";
import { loadLayout } from "../layout/load.js";
import { isPki, outputFiles } from "../layout/outputs.js";
import { thresholdMs } from "../vault/leases.js";
import type { LeaseSpec } from "../vault/leases.js";
import { StateStore, keyedHash } from "../state/state.js";
import type { State } from "../state/state.js";
import type { RunOptions } from "../run/context.js";
import { openRun, prepareAgentDir } from "../run/context.js";
import { withLock } from "../run/lock.js";
import { recoverInterrupted } from "../run/recover.js";
import { syncPass } from "../sync/pass.js";
import type { SyncResult } from "../sync/result.js";
import { FILE_MODE } from "../fs/writer.js";

export interface FileWatcher {
  close(): Promise<void>;
}
/** The chokidar seam: watch `paths`, call `onEvent` with (event, path). */
export type WatchFactory = (paths: string[], onEvent: (event: string, file: string) => void) => FileWatcher;

export interface WatchOptions extends Omit<RunOptions, "dryRun"> {
  intervalMs: number;
  maxBackoffMs: number;
  healIntervalMs: number;
  debounceMs: number;
  /** The first retry delay after a failed pass (doubling up to maxBackoffMs); default 1 s. */
  firstBackoffMs?: number;
  watchFiles: WatchFactory;
}

interface FileSig {
  ino: number;
  size: number;
  mtimeMs: number;
  mode: number;
}

type Reason = "start" | "layout" | "heal" | "interval" | "lifecycle" | "retry" | "signal";

export class Watcher {
  private layout: ResolvedLayout | null = null;
  private stopping = false;
  /** Aborted by stop(): ends a wait for the lock (a pass in progress finishes first). */
  private readonly stopCtl = new AbortController();
  /** The idle or backoff wait in progress; aborting it wakes the loop. */
  private waitCtl: AbortController | null = null;
  /** A reload (SIGHUP) or a layout edit: run now, even during a backoff. */
  private forceNow = false;
  private readonly triggers = new Set<Reason>();
  private backoffMs = 0;
  private failures = 0;
  private nextIntervalAt = 0;
  private nextLifecycleAt = Infinity;
  private lifecycleRetries = 0;
  private notBefore = 0;
  private sigs = new Map<string, FileSig>();
  private layoutWatcher: FileWatcher | null = null;
  private publicWatcher: FileWatcher | null = null;
  private debounceCtl: AbortController | null = null;
  private readonly debouncing = new Set<Reason>();
  private watchedFiles: string[] = [];
  passes = 0;

  constructor(private readonly opts: WatchOptions) {}

  get clock(): Clock {
    return this.opts.clock;
  }

  /** Ask the loop to stop after the current pass (SIGTERM/SIGINT). */
  stop(): void {
    this.stopping = true;
    this.stopCtl.abort();
    this.debounceCtl?.abort();
    this.poke();
  }

  /** Re-read the layout now and, if it is valid, run a pass now, even during a backoff (SIGHUP). */
  reload(): void {
    this.forceNow = true;
    this.trigger("layout");
  }

  private trigger(r: Reason): void {
    this.triggers.add(r);
    // During a backoff only a forced trigger (or a stop) is worth waking up for.
    if (this.forceNow || this.clock.now() >= this.notBefore) this.poke();
  }

  private poke(): void {
    this.waitCtl?.abort();
    this.waitCtl = null;
  }

  private debounced(r: Reason): void {
    if (this.stopping) return;
    this.debouncing.add(r);
    this.debounceCtl?.abort();
    const ctl = new AbortController();
    this.debounceCtl = ctl;
    void this.clock.sleep(this.opts.debounceMs, ctl.signal).then(() => {
      if (ctl.signal.aborted) return;
      this.debounceCtl = null;
      const reasons = [...this.debouncing];
      this.debouncing.clear();
      if (reasons.includes("layout")) this.forceNow = true;
      for (const x of reasons) this.trigger(x);
    });
  }

  private jitter(ms: number, spread = 0.1): number {
    return ms * (1 - spread + 2 * spread * this.clock.random());
  }

  /** Load and validate the layout; keeps the last good one on failure. */
  private async loadLayoutSafely(): Promise<boolean> {
    try {
      const l = await loadLayout(this.opts.layoutFile, this.opts.env, "write");
      this.opts.redactor.setPublicText(l.text);
      await prepareAgentDir(l, this.opts.log);
      const changed = this.layout === null || this.layout.text !== l.text;
      this.layout = l;
      if (changed) await this.watchLayoutFiles();
      return true;
    } catch (e) {
      const msg = oneLine(e).split("\n").join("; ");
      if (!this.layout) throw e;
      this.opts.log.error({ code: e instanceof VrError ? e.code : "ERROR" }, `the edited layout is invalid and was not applied (the last good layout keeps running): ${msg}`);
      return false;
    }
  }

  private async watchLayoutFiles(): Promise<void> {
    const l = this.layout as ResolvedLayout;
    const files = [l.file, ...l.outputs.flatMap((o) => (o.format === "template" && o.template ? [path.resolve(l.dir, o.template)] : []))];
    if (files.join("\0") === this.watchedFiles.join("\0") && this.layoutWatcher) return;
    await this.layoutWatcher?.close();
    this.watchedFiles = files;
    this.layoutWatcher = this.opts.watchFiles(files, () => this.debounced("layout"));
    if (!this.publicWatcher) {
      this.publicWatcher = this.opts.watchFiles([l.publicDir], (_ev, file) => {
        if (this.isManaged(file)) this.debounced("heal");
      });
    }
  }

  private isManaged(abs: string): boolean {
    const l = this.layout;
    if (!l) return false;
    const rel = path.relative(l.publicDir, abs).split(path.sep).join("/");
    return this.sigs.has(rel) || l.outputs.some((o) => outputFiles(o).includes(rel));
  }

  /** Cheap local check: does every managed file still look like what we wrote? */
  private async needsHeal(): Promise<boolean> {
    const l = this.layout;
    if (!l) return false;
    const store = new StateStore(l.agentDir);
    let state: State | null = null;
    let key: Buffer | null = null;
    for (const o of l.outputs) {
      for (const rel of outputFiles(o)) {
        const abs = path.join(l.publicDir, rel);
        let st;
        try {
          st = await lstat(abs);
        } catch {
          return true;
        }
        if (!st.isFile() || (st.mode & 0o7777) !== FILE_MODE) return true;
        const sig = this.sigs.get(rel);
        if (sig && sig.ino === st.ino && sig.size === st.size && sig.mtimeMs === st.mtimeMs) continue;
        // Changed signature: compare content with the keyed hash of what was written.
        state ??= await store.load();
        key ??= await store.hmacKey();
        const rec = state.outputs[rel];
        if (!rec) return true;
        if (keyedHash(key, await readFile(abs)) !== rec.hash) return true;
        this.sigs.set(rel, { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, mode: st.mode & 0o7777 });
      }
    }
    return false;
  }

  /**
   * Remember what each managed file looks like after a pass — only when its content still is what
   * was written (something may have touched it while the pass ran; then heal again).
   */
  private async recordSignatures(): Promise<void> {
    const l = this.layout as ResolvedLayout;
    const store = new StateStore(l.agentDir);
    const [state, key] = await Promise.all([store.load(), store.hmacKey()]);
    const sigs = new Map<string, FileSig>();
    for (const o of l.outputs) {
      for (const rel of outputFiles(o)) {
        const abs = path.join(l.publicDir, rel);
        try {
          const st = await lstat(abs);
          const rec = state.outputs[rel];
          if (rec && st.isFile() && keyedHash(key, await readFile(abs)) === rec.hash) {
            sigs.set(rel, { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, mode: st.mode & 0o7777 });
          }
        } catch {
          // missing: the next heal check notices
        }
      }
    }
    this.sigs = sigs;
  }

  /** When the next token, lease or certificate action is due, from state. */
  private lifecycleDue(state: State, tokenTtlSec: number, passAt: number): number {
    const l = this.layout as ResolvedLayout;
    const times: number[] = [];
    if (tokenTtlSec > 0) times.push(passAt + (tokenTtlSec * 1000) / 2 + 1000);
    for (const [name, rec] of Object.entries(state.leases)) {
      const spec = l.sources.get(name);
      if (spec?.type === "lease") times.push(rec.expiresAt - thresholdMs(spec as LeaseSpec, rec.duration) + 1000);
    }
    for (const o of l.outputs) {
      if (!isPki(o)) continue;
      const p = state.pki[path.posix.normalize(o.dir)];
      if (!p) continue;
      const rb = o.renewBefore ?? 0.33;
      const before = typeof rb === "number" ? rb * (p.notAfter - p.notBefore) : parseDuration(rb);
      times.push(p.notAfter - before + 1000);
    }
    return times.length ? Math.min(...times) : Infinity;
  }

  private async pass(reason: Reason): Promise<SyncResult | null> {
    const l = this.layout as ResolvedLayout;
    const opts: RunOptions = { ...this.opts, dryRun: false, signal: this.stopCtl.signal };
    const started = this.clock.now();
    try {
      const res = await withLock(l, opts, "watch", async () => {
        await recoverInterrupted(l, opts.log);
        const s = await openRun(l, opts);
        try {
          const r = await syncPass(s, { pki: new Set(), leases: new Set() });
          const due = this.lifecycleDue(s.state, s.auth.ttl, started);
          // Still due after this pass (the renewal failed, e.g. refused): retry after a backoff
          // that doubles like a failed pass's, not in a loop of passes.
          const now = this.clock.now();
          this.lifecycleRetries = due > now ? 0 : this.lifecycleRetries + 1;
          this.nextLifecycleAt = due > now ? due : now + this.jitter(this.retryDelay(this.lifecycleRetries), 0.2);
          return r;
        } finally {
          s.client.close();
        }
      });
      this.passes++;
      await this.recordSignatures();
      if (res.exit === ExitCode.Unavailable) this.fail(reason, "Vault unavailable for every source");
      else {
        this.failures = 0;
        this.backoffMs = 0;
        this.notBefore = 0;
      }
      return res;
    } catch (e) {
      if (this.stopping && e instanceof VrError && e.code === "LOCK_ABORTED") {
        this.opts.log.info({ reason }, "stopping: no pass (another run held the lock)");
        return null;
      }
      this.passes++;
      this.fail(reason, oneLine(e));
      return null;
    }
  }

  /** The n-th retry's delay (before jitter): the first backoff, doubling, up to the cap. */
  private retryDelay(n: number): number {
    return Math.min(this.opts.maxBackoffMs, (this.opts.firstBackoffMs ?? 1000) * 2 ** (n - 1));
  }

  private fail(reason: Reason, msg: string): void {
    this.failures++;
    this.backoffMs = this.jitter(this.retryDelay(this.failures), 0.2);
    this.notBefore = this.clock.now() + this.backoffMs;
    this.triggers.add("retry");
    this.opts.log.error({ reason, failures: this.failures, retryInMs: Math.round(this.backoffMs) }, `pass failed (${msg}); keeping the last good files, retrying in ${Math.round(this.backoffMs / 1000)} s`);
  }

  /** One timer until `at`, ended early by poke() (a trigger, a reload, a stop). */
  private async sleepUntil(at: number): Promise<void> {
    const ms = at - this.clock.now();
    if (!(ms > 0) || this.stopping || this.forceNow) return;
    const ctl = new AbortController();
    this.waitCtl = ctl;
    await this.clock.sleep(ms, ctl.signal);
    if (this.waitCtl === ctl) this.waitCtl = null;
  }

  /** Run until stop(); resolves with the exit code (0 after a clean stop). */
  async run(): Promise<ExitCode> {
    await this.loadLayoutSafely();
    this.triggers.add("start");
    let lastHealScan = this.clock.now();
    while (!this.stopping) {
      const now = this.clock.now();
      if (now >= this.nextIntervalAt) this.triggers.add("interval");
      if (now >= this.nextLifecycleAt) this.triggers.add("lifecycle");
      if (now - lastHealScan >= this.opts.healIntervalMs) {
        lastHealScan = now;
        if (this.layout && this.passes > 0 && (await this.needsHeal())) this.triggers.add("heal");
      }
      if (this.triggers.size && (now >= this.notBefore || this.forceNow)) {
        const forced = this.forceNow && now < this.notBefore;
        this.forceNow = false;
        const reasons = [...this.triggers];
        this.triggers.clear();
        if (reasons.includes("layout")) {
          const ok = await this.loadLayoutSafely();
          if (!ok) {
            // The last good layout keeps running; anything else due waits for its time.
            for (const r of reasons) if (r !== "layout") this.triggers.add(r);
            continue;
          }
          if (forced) this.opts.log.info({ reason: "layout" }, "layout re-read: passing now instead of waiting for the retry");
        }
        if (reasons.length === 1 && reasons[0] === "heal" && !(await this.needsHeal())) continue; // our own writes
        if (reasons.includes("heal")) this.opts.log.warn({ reason: "drift" }, "a managed file in public/ was changed, deleted or chmod'ed by something else: restoring it");
        await this.pass(reasons.includes("start") ? "start" : (reasons[0] as Reason));
        this.nextIntervalAt = this.clock.now() + this.jitter(this.opts.intervalMs);
        continue;
      }
      // Pending triggers mean a backoff: nothing can run before it ends, so one timer until then.
      await this.sleepUntil(this.triggers.size ? this.notBefore : Math.min(this.nextIntervalAt, this.nextLifecycleAt, lastHealScan + this.opts.healIntervalMs));
    }
    this.debounceCtl?.abort();
    await this.layoutWatcher?.close();
    await this.publicWatcher?.close();
    this.opts.log.info({ passes: this.passes }, `watch stopped after ${this.passes} passes`);
    return ExitCode.Ok;
  }
}
