/**
 * `watch`: one long-running process instead of cron. A full pass at start, then passes when the
 * layout or a template changes (validated first: an invalid edit is reported and the last good
 * layout keeps running), when a managed file in public/ is deleted, edited or chmod'ed (restored
 * from Vault), on the KV interval (with jitter), and when a token, lease or certificate is due —
 * computed from state, not by polling everything. Failures back off exponentially with jitter up
 * to a cap. The lock is taken per pass, so manual `sync`/`rotate` runs interleave safely.
 *
 * When to pass is decided by the pure scheduler (schedule.ts); this is the loop around it. Every
 * wait (idle, backoff, debounce, the lock) is one Clock.sleep with an AbortSignal: a stop
 * (SIGTERM) or reload (SIGHUP) request ends it at once, and nothing polls.
 */
import { count } from "../support/plural.js";
import path from "node:path";
import type { Clock } from "../support/clock.js";
import { ExitCode, VrError, oneLine } from "../support/errors.js";
import type { ResolvedLayout } from "../layout/load.js";
import type { RunOptions } from "../run/context.js";
import type { SyncResult } from "../sync/result.js";
import type { RunFacts } from "../sync/metrics.js";
import { writeRunMetrics } from "../sync/outcome.js";
import type { Signatures } from "./heal.js";
import { isManaged, needsHeal, recordSignatures } from "./heal.js";
import { loadPrepared, lockedPass } from "./pass.js";
import type { Reason, Schedule, ScheduleConfig } from "./schedule.js";
import * as sched from "./schedule.js";

export interface FileWatcher {
  close(): Promise<void>;
}
/** The chokidar seam: watch `paths`, call `onEvent` with (event, path). */
export type WatchFactory = (paths: string[], onEvent: (event: string, file: string) => void) => FileWatcher;

export interface WatchOptions extends Omit<RunOptions, "dryRun">, ScheduleConfig {
  watchFiles: WatchFactory;
  /** Where to write Prometheus metrics after each pass (sync/metrics.ts). */
  metricsFile?: string;
}

export class Watcher {
  private layout: ResolvedLayout | null = null;
  private s: Schedule;
  /** Aborted by stop(): ends a wait for the lock (a pass in progress finishes first). */
  private readonly stopCtl = new AbortController();
  /** The idle or backoff wait in progress; aborting it wakes the loop. */
  private waitCtl: AbortController | null = null;
  private debounceCtl: AbortController | null = null;
  private sigs: Signatures = new Map();
  private layoutWatcher: FileWatcher | null = null;
  private publicWatcher: FileWatcher | null = null;
  private watchedFiles: string[] = [];
  passes = 0;

  constructor(private readonly opts: WatchOptions) {
    this.s = sched.initialSchedule();
  }

  get clock(): Clock {
    return this.opts.clock;
  }

  /** Ask the loop to stop after the current pass (SIGTERM/SIGINT). */
  stop(): void {
    this.s = sched.stopRequested(this.s);
    this.stopCtl.abort();
    this.debounceCtl?.abort();
    this.poke();
  }

  /** Re-read the layout now and, if it is valid, run a pass now, even during a backoff (SIGHUP). */
  reload(): void {
    this.apply(sched.reloadRequested(this.s, this.clock.now()));
  }

  private apply(x: { s: Schedule; wake: boolean }): void {
    this.s = x.s;
    if (x.wake) this.poke();
  }

  private poke(): void {
    this.waitCtl?.abort();
    this.waitCtl = null;
  }

  /** A file event: (re)start the debounce timer; when it settles, its reasons trigger a pass. */
  private debounced(r: Reason): void {
    if (this.s.stopping) return;
    const now = this.clock.now();
    this.s = sched.eventArrived(this.s, r, now, this.opts);
    this.debounceCtl?.abort();
    const ctl = new AbortController();
    this.debounceCtl = ctl;
    void this.clock.sleep((this.s.debounceAt ?? now) - now, ctl.signal).then(() => {
      if (ctl.signal.aborted) return;
      this.debounceCtl = null;
      this.apply(sched.eventsSettled(this.s, this.clock.now()));
    });
  }

  /** Load and validate the layout; keeps the last good one on failure. */
  private async loadLayoutSafely(): Promise<boolean> {
    try {
      const l = await loadPrepared(this.opts.layoutFile, this.opts.env, this.opts.redactor, this.opts.log);
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
        if (isManaged(this.layout, this.sigs, file)) this.debounced("heal");
      });
    }
  }

  private async pass(reason: Reason): Promise<SyncResult | null> {
    const l = this.layout as ResolvedLayout;
    const opts: RunOptions = { ...this.opts, dryRun: false, signal: this.stopCtl.signal };
    const startedAt = this.clock.now();
    try {
      const res = await lockedPass(l, opts, this.clock.now(), (lifecycle) => {
        this.s = sched.lifecycleScheduled(this.s, sched.lifecycleDue(lifecycle), this.clock.now(), () => this.clock.random(), this.opts);
      });
      this.passes++;
      await this.metrics(l, { startedAt, endedAt: this.clock.now(), exit: res.exit, requests: res.requests, results: res.results });
      this.sigs = await recordSignatures(l);
      if (res.exit === ExitCode.Unavailable) this.fail(reason, "Vault unavailable for every source");
      else this.s = sched.passSucceeded(this.s);
      return res;
    } catch (e) {
      if (this.s.stopping && e instanceof VrError && e.code === "LOCK_ABORTED") {
        this.opts.log.info({ reason }, "stopping: no pass (another run held the lock)");
        return null;
      }
      this.passes++;
      await this.metrics(l, { startedAt, endedAt: this.clock.now(), exit: e instanceof VrError ? e.exit : ExitCode.Failed });
      this.fail(reason, oneLine(e));
      return null;
    }
  }

  /** After each pass, failed or not: the metrics file, when asked for. */
  private async metrics(l: ResolvedLayout, facts: RunFacts): Promise<void> {
    if (this.opts.metricsFile !== undefined) await writeRunMetrics(this.opts, this.opts.metricsFile, l, facts);
  }

  private fail(reason: Reason, msg: string): void {
    this.s = sched.passFailed(this.s, this.clock.now(), this.clock.random(), this.opts);
    const { failures, backoffMs } = this.s;
    this.opts.log.error({ reason, failures, retryInMs: Math.round(backoffMs) }, `pass failed (${msg}); keeping the last good files, retrying in ${Math.round(backoffMs / 1000)} s`);
  }

  /** One timer until `at`, ended early by poke() (a trigger, a reload, a stop). */
  private async sleepUntil(at: number): Promise<void> {
    const ms = sched.waitMs(this.s, at, this.clock.now());
    if (ms === 0) return;
    const ctl = new AbortController();
    this.waitCtl = ctl;
    await this.clock.sleep(ms, ctl.signal);
    if (this.waitCtl === ctl) this.waitCtl = null;
  }

  /** Run until stop(); resolves with the exit code (0 after a clean stop). */
  async run(): Promise<ExitCode> {
    await this.loadLayoutSafely();
    this.s = sched.started(this.s, this.clock.now());
    while (!this.s.stopping) {
      const now = this.clock.now();
      const d = sched.due(this.s, now, this.opts);
      this.s = d.s;
      if (d.healScan && this.layout && this.passes > 0 && (await needsHeal(this.layout, this.sigs))) this.s = sched.addTrigger(this.s, "heal");
      if (sched.ready(this.s, now)) {
        const t = sched.take(this.s, now);
        this.s = t.s;
        if (t.reasons.includes("layout")) {
          if (!(await this.loadLayoutSafely())) {
            this.s = sched.layoutRejected(this.s, t.reasons);
            continue;
          }
          if (t.forced) this.opts.log.info({ reason: "layout" }, "layout re-read: passing now instead of waiting for the retry");
        }
        if (sched.onlyHeal(t.reasons) && !(await needsHeal(this.layout as ResolvedLayout, this.sigs))) continue; // our own writes
        if (t.reasons.includes("heal")) this.opts.log.warn({ reason: "drift" }, "a managed file in public/ was changed, deleted or chmod'ed by something else: restoring it");
        await this.pass(t.reason);
        this.s = sched.passDone(this.s, this.clock.now(), this.clock.random(), this.opts);
        continue;
      }
      await this.sleepUntil(sched.wakeAt(this.s, this.opts));
    }
    this.debounceCtl?.abort();
    await this.layoutWatcher?.close();
    await this.publicWatcher?.close();
    this.opts.log.info({ passes: this.passes }, `watch stopped after ${count(this.passes, "pass", "passes")}`);
    return ExitCode.Ok;
  }
}
