/**
 * A sync run as scripts and scrapers see it: the run, whatever way it ends (results, or the error
 * that ended it), its `--json` summary, and its `--metrics-file`. A run that fails still writes
 * its metrics (that is what an alert needs); only a layout that cannot be loaded leaves the
 * metrics file as it was, since there is nothing to name the outputs by.
 */
import type { ResolvedLayout } from "../layout/load.js";
import { loadLayout } from "../layout/load.js";
import type { RunOptions } from "../run/context.js";
import { StateStore } from "../state/state.js";
import { ExitCode, VrError, describeError, isVrError } from "../support/errors.js";
import { writeMetricsFile } from "../fs/metrics-file.js";
import { errorCode } from "./record.js";
import type { RunFacts } from "./metrics.js";
import { renderRunMetrics } from "./metrics.js";
import type { OutputResult, SyncResult } from "./result.js";
import { runSync } from "./sync.js";

export interface SyncOutcome {
  facts: RunFacts;
  result?: SyncResult;
  /** What ended the run before its result (rethrown by the command, so the entry point reports it). */
  error?: Error;
}

export interface ReportedSyncOptions extends RunOptions {
  /** Where to write the run's Prometheus metrics (not with a dry run). */
  metricsFile?: string;
}

/** `sync`, with the run's facts kept whichever way it ends, and its metrics written when asked. */
export async function runSyncReported(opts: ReportedSyncOptions): Promise<SyncOutcome> {
  if (opts.metricsFile !== undefined && opts.dryRun) {
    throw new VrError("USAGE", "--metrics-file cannot be combined with --dry-run (a dry run writes nothing)", { exit: ExitCode.Usage });
  }
  const startedAt = opts.clock.now();
  let layout: ResolvedLayout | undefined;
  let requests: (() => number) | undefined;
  const observed: RunOptions = {
    ...opts,
    observer: {
      layout: (l) => {
        layout = l;
        opts.observer?.layout?.(l);
      },
      client: (c) => {
        requests = () => c.requestCount;
        opts.observer?.client?.(c);
      },
    },
  };
  let outcome: SyncOutcome;
  try {
    const result = await runSync(observed);
    outcome = { result, facts: { startedAt, endedAt: opts.clock.now(), exit: result.exit, requests: result.requests, results: result.results } };
  } catch (e) {
    const facts: RunFacts = { startedAt, endedAt: opts.clock.now(), exit: isVrError(e) ? e.exit : ExitCode.Failed };
    if (requests) facts.requests = requests();
    outcome = { error: e instanceof Error ? e : new Error(String(e)), facts };
  }
  if (opts.metricsFile !== undefined) await writeRunMetrics(opts, opts.metricsFile, layout, outcome.facts);
  return outcome;
}

/**
 * Write the run's metrics; the state is read back from disk (read-only: as the run left it). A
 * layout not loaded by the run (the lock was never taken) is loaded read-only here; one that
 * cannot be loaded at all leaves the file as it was. A failed write is logged, the run's exit kept.
 */
export async function writeRunMetrics(opts: Pick<RunOptions, "layoutFile" | "env" | "log">, file: string, layout: ResolvedLayout | undefined, facts: RunFacts): Promise<void> {
  let l = layout;
  try {
    l ??= await loadLayout(opts.layoutFile, opts.env, "read");
  } catch {
    opts.log.warn({ file }, `metrics not written to ${file}: the layout could not be loaded`);
    return;
  }
  try {
    const state = await new StateStore(l.agentDir).load();
    await writeMetricsFile(file, renderRunMetrics(l, state, facts));
  } catch (e) {
    opts.log.error({ file, code: errorCode(e instanceof Error ? e : undefined) }, `metrics not written to ${file}: ${describeError(e, { flat: true })}`);
  }
}

/** One file in the `--json` summary: names, sizes, the one-line error; never a value. */
type SummaryFile = Pick<OutputResult, "file" | "action" | "keysAdded" | "keysRemoved" | "keysChanged" | "sizeBefore" | "sizeAfter" | "modeFixed" | "note"> & {
  error?: { code: string; message: string };
};

export interface SyncSummary {
  version: 1;
  ok: boolean;
  exit: number;
  dryRun: boolean;
  files: SummaryFile[];
  counts: { created: number; updated: number; unchanged: number; deleted: number; failed: number } | null;
  hookFailures: string[];
  requests: number | null;
  auth: SyncResult["auth"] | null;
  durationSeconds: number;
  /** The dry run's plan as the text shows it (lease notes, files, hooks). */
  plan?: string[];
  /** What ended the run before any output was rendered. */
  error: { code: string; message: string } | null;
}

const oneLineError = (e: unknown) => ({ code: isVrError(e) ? e.code : "ERROR", message: describeError(e, { flat: true }) });

/** The `--json` document of a run (the command redacts the text). */
export function syncSummary(o: SyncOutcome, dryRun: boolean, plan: string[]): SyncSummary {
  const results = o.result?.results ?? [];
  const files = results.map((r): SummaryFile => {
    const f: SummaryFile = { file: r.file, action: r.action };
    if (r.keysAdded?.length) f.keysAdded = r.keysAdded;
    if (r.keysRemoved?.length) f.keysRemoved = r.keysRemoved;
    if (r.keysChanged?.length) f.keysChanged = r.keysChanged;
    if (r.sizeBefore !== undefined) f.sizeBefore = r.sizeBefore;
    if (r.sizeAfter !== undefined) f.sizeAfter = r.sizeAfter;
    if (r.modeFixed) f.modeFixed = true;
    if (r.note) f.note = r.note;
    if (r.action === "failed") f.error = { code: errorCode(r.error), message: describeError(r.error, { flat: true }) };
    return f;
  });
  const count = (a: OutputResult["action"]) => results.filter((r) => r.action === a).length;
  const s: SyncSummary = {
    version: 1,
    ok: o.facts.exit === ExitCode.Ok,
    exit: o.facts.exit,
    dryRun,
    files,
    counts: o.result ? { created: count("create"), updated: count("update"), unchanged: count("unchanged"), deleted: count("delete"), failed: count("failed") } : null,
    hookFailures: o.result?.hookFailures ?? [],
    requests: o.facts.requests ?? null,
    auth: o.result?.auth ?? null,
    durationSeconds: Math.max(0, o.facts.endedAt - o.facts.startedAt) / 1000,
    error: o.error === undefined ? null : oneLineError(o.error),
  };
  if (dryRun) s.plan = plan;
  return s;
}
