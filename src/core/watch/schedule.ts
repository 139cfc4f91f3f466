/**
 * The watch scheduler: when the next pass runs and why, as pure functions over a plain state.
 * Time (`now`, ms) and randomness (`random`, in [0, 1)) are arguments; nothing here waits, reads
 * a file or a clock. The loop (watch.ts) sleeps until `wakeAt`, takes the due reasons with
 * `take`, runs a pass and reports it back with `passSucceeded` / `passFailed` / `passDone`.
 *
 * The rules:
 * - the KV interval: a pass `intervalMs` (±10% jitter) after the previous one ended;
 * - lifecycles: the next token, lease or certificate action due (from state), and when it is still
 *   due after its pass (the renewal was refused), a retry after a doubling backoff (±20%);
 * - failures: a failed pass is retried after `firstBackoffMs` (default 1 s), doubling up to
 *   `maxBackoffMs` (±20%); during the backoff nothing runs except a forced request (a reload or a
 *   layout edit), and no trigger wakes the loop early;
 * - the heal scan: every `healIntervalMs`, the loop compares managed files with what was written;
 * - file events are debounced (`debounceMs` after the last one), then trigger their reasons; a
 *   layout edit is forced like a reload.
 */
import { parseDuration } from "../support/duration.js";

export type Reason = "start" | "layout" | "heal" | "interval" | "lifecycle" | "retry" | "signal";

export interface ScheduleConfig {
  intervalMs: number;
  maxBackoffMs: number;
  healIntervalMs: number;
  debounceMs: number;
  /** The first retry delay after a failed pass (doubling up to maxBackoffMs); default 1 s. */
  firstBackoffMs?: number;
}

export interface Schedule {
  /** Set by a stop request: no more passes, no more debounced events. */
  readonly stopping: boolean;
  /** A reload (SIGHUP) or a layout edit: run now, even during a backoff. */
  readonly forceNow: boolean;
  /** The reasons for the next pass, in the order they first arrived (a set). */
  readonly triggers: readonly Reason[];
  /** Consecutive failed passes. */
  readonly failures: number;
  /** The current backoff (after jitter); 0 when the last pass succeeded. */
  readonly backoffMs: number;
  /** No pass before this time (the backoff's end), unless forced. */
  readonly notBefore: number;
  readonly nextIntervalAt: number;
  readonly nextLifecycleAt: number;
  /** Consecutive passes after which a lifecycle action was still due. */
  readonly lifecycleRetries: number;
  readonly lastHealScan: number;
  /** File events waiting for the debounce to settle, and when it does (null: none pending). */
  readonly debouncing: readonly Reason[];
  readonly debounceAt: number | null;
}

/** Before the loop starts: nothing due yet but the interval (at once), no lifecycle known. */
export function initialSchedule(): Schedule {
  return { stopping: false, forceNow: false, triggers: [], failures: 0, backoffMs: 0, notBefore: 0, nextIntervalAt: 0, nextLifecycleAt: Infinity, lifecycleRetries: 0, lastHealScan: 0, debouncing: [], debounceAt: null };
}

/** The loop starts (its first layout loaded): the start pass is due at once; heal scans count from now. */
export function started(s: Schedule, now: number): Schedule {
  return { ...addTrigger(s, "start"), lastHealScan: now };
}

const withReason = (list: readonly Reason[], r: Reason): readonly Reason[] => (list.includes(r) ? list : [...list, r]);

/** `ms` spread evenly by ±`spread` (random in [0, 1)). */
export function jitter(ms: number, random: number, spread = 0.1): number {
  return ms * (1 - spread + 2 * spread * random);
}

/** The n-th retry's delay (before jitter): the first backoff, doubling, up to the cap. */
export function retryDelay(n: number, cfg: Pick<ScheduleConfig, "maxBackoffMs" | "firstBackoffMs">): number {
  return Math.min(cfg.maxBackoffMs, (cfg.firstBackoffMs ?? 1000) * 2 ** (n - 1));
}

/** Whether a trigger arriving at `now` is worth waking the loop for (not during a backoff, unless forced). */
function wakes(s: Schedule, now: number): boolean {
  return s.forceNow || now >= s.notBefore;
}

/** A reason for the next pass (no wake-up decision: the loop is awake when it adds one). */
export function addTrigger(s: Schedule, r: Reason): Schedule {
  return { ...s, triggers: withReason(s.triggers, r) };
}

/** A reason arriving from outside the loop; `wake`: end the loop's current wait. */
export function trigger(s: Schedule, r: Reason, now: number): { s: Schedule; wake: boolean } {
  const next = addTrigger(s, r);
  return { s: next, wake: wakes(next, now) };
}

/** SIGHUP: re-read the layout and pass now, even during a backoff. */
export function reloadRequested(s: Schedule, now: number): { s: Schedule; wake: boolean } {
  return trigger({ ...s, forceNow: true }, "layout", now);
}

/** SIGTERM/SIGINT: stop after the current pass; pending debounced events are dropped. */
export function stopRequested(s: Schedule): Schedule {
  return { ...s, stopping: true, debouncing: [], debounceAt: null };
}

/** A file event (after a stop: ignored). The debounce restarts: it settles `debounceMs` after the last event. */
export function eventArrived(s: Schedule, r: Reason, now: number, cfg: Pick<ScheduleConfig, "debounceMs">): Schedule {
  if (s.stopping) return s;
  return { ...s, debouncing: withReason(s.debouncing, r), debounceAt: now + cfg.debounceMs };
}

/** The debounce settled: its reasons become triggers (a layout edit is forced like a reload). */
export function eventsSettled(s: Schedule, now: number): { s: Schedule; wake: boolean } {
  const reasons = s.debouncing;
  let next: Schedule = { ...s, debouncing: [], debounceAt: null };
  if (reasons.length === 0) return { s: next, wake: false };
  if (reasons.includes("layout")) next = { ...next, forceNow: true };
  for (const r of reasons) next = addTrigger(next, r);
  return { s: next, wake: wakes(next, now) };
}

/** At the top of the loop: add what is due by `now`; `healScan`: compare the managed files now. */
export function due(s: Schedule, now: number, cfg: Pick<ScheduleConfig, "healIntervalMs">): { s: Schedule; healScan: boolean } {
  let next = s;
  if (now >= next.nextIntervalAt) next = addTrigger(next, "interval");
  if (now >= next.nextLifecycleAt) next = addTrigger(next, "lifecycle");
  const healScan = now - next.lastHealScan >= cfg.healIntervalMs;
  if (healScan) next = { ...next, lastHealScan: now };
  return { s: next, healScan };
}

/** Is a pass to run now? (something is due, and no backoff holds it, or it is forced) */
export function ready(s: Schedule, now: number): boolean {
  return s.triggers.length > 0 && wakes(s, now);
}

/**
 * Take the reasons for the pass that runs now. `forced`: a forced request cut a backoff short.
 * The pass is logged under "start" if that is among them, else the first reason that arrived.
 */
export function take(s: Schedule, now: number): { s: Schedule; reasons: Reason[]; forced: boolean; reason: Reason } {
  const reasons = [...s.triggers];
  const reason = reasons.includes("start") ? "start" : (reasons[0] as Reason);
  return { s: { ...s, forceNow: false, triggers: [] }, reasons, forced: s.forceNow && now < s.notBefore, reason };
}

/** The edited layout is invalid: the last good one keeps running, and everything else taken waits for its time. */
export function layoutRejected(s: Schedule, reasons: readonly Reason[]): Schedule {
  let next = s;
  for (const r of reasons) if (r !== "layout") next = addTrigger(next, r);
  return next;
}

/** Only our own writes fired the heal event (nothing drifted): no pass. */
export function onlyHeal(reasons: readonly Reason[]): boolean {
  return reasons.length === 1 && reasons[0] === "heal";
}

/**
 * When the loop wakes next. Pending triggers mean a backoff: nothing can run before it ends, so
 * one timer until then (no wake-up for the heal scan or the interval meanwhile).
 */
export function wakeAt(s: Schedule, cfg: Pick<ScheduleConfig, "healIntervalMs">): number {
  return s.triggers.length ? s.notBefore : Math.min(s.nextIntervalAt, s.nextLifecycleAt, s.lastHealScan + cfg.healIntervalMs);
}

/** Whether the loop waits at all before `at` (a stop or a forced request never waits). */
export function waitMs(s: Schedule, at: number, now: number): number {
  const ms = at - now;
  return !(ms > 0) || s.stopping || s.forceNow ? 0 : ms;
}

/** A pass that reached Vault for at least one source: the backoff ends. */
export function passSucceeded(s: Schedule): Schedule {
  return { ...s, failures: 0, backoffMs: 0, notBefore: 0 };
}

/** A failed pass (or every source unavailable): retry after the next backoff. */
export function passFailed(s: Schedule, now: number, random: number, cfg: Pick<ScheduleConfig, "maxBackoffMs" | "firstBackoffMs">): Schedule {
  const failures = s.failures + 1;
  const backoffMs = jitter(retryDelay(failures, cfg), random, 0.2);
  return { ...addTrigger(s, "retry"), failures, backoffMs, notBefore: now + backoffMs };
}

/** After every pass (failed or not): the next KV interval, counted from its end. */
export function passDone(s: Schedule, now: number, random: number, cfg: Pick<ScheduleConfig, "intervalMs">): Schedule {
  return { ...s, nextIntervalAt: now + jitter(cfg.intervalMs, random) };
}

/**
 * The next lifecycle action, `dueAt` (from `lifecycleDue`), seen at `now` after a pass. Still due
 * (the renewal failed, e.g. refused): retried after a backoff that doubles like a failed pass's,
 * not in a loop of passes. `random` is only drawn for a retry.
 */
export function lifecycleScheduled(s: Schedule, dueAt: number, now: number, random: () => number, cfg: Pick<ScheduleConfig, "maxBackoffMs" | "firstBackoffMs">): Schedule {
  if (dueAt > now) return { ...s, lifecycleRetries: 0, nextLifecycleAt: dueAt };
  const lifecycleRetries = s.lifecycleRetries + 1;
  return { ...s, lifecycleRetries, nextLifecycleAt: now + jitter(retryDelay(lifecycleRetries, cfg), random(), 0.2) };
}

export interface LifecycleInputs {
  /** When the pass began (before the lock). */
  passAt: number;
  /** The token's TTL (s); 0: it does not expire. */
  tokenTtlSec: number;
  /** Each lease in state with its renewal threshold (leases.ts thresholdMs). */
  leases: ReadonlyArray<{ expiresAt: number; thresholdMs: number }>;
  /** Each certificate set in state with its layout's renewBefore (a fraction of its lifetime, or a duration; default 0.33). */
  certificates: ReadonlyArray<{ notBefore: number; notAfter: number; renewBefore?: number | string | undefined }>;
}

/**
 * When the next token, lease or certificate action is due (a second after its threshold):
 * the token at half its TTL, a lease at its threshold before expiry, a certificate renewBefore
 * before its notAfter. Infinity: nothing is due.
 */
export function lifecycleDue(x: LifecycleInputs): number {
  const times: number[] = [];
  if (x.tokenTtlSec > 0) times.push(x.passAt + (x.tokenTtlSec * 1000) / 2 + 1000);
  for (const l of x.leases) times.push(l.expiresAt - l.thresholdMs + 1000);
  for (const c of x.certificates) {
    const rb = c.renewBefore ?? 0.33;
    const before = typeof rb === "number" ? rb * (c.notAfter - c.notBefore) : parseDuration(rb);
    times.push(c.notAfter - before + 1000);
  }
  return times.length ? Math.min(...times) : Infinity;
}
