/**
 * The watch scheduler's rules, with plain numbers as the clock and as the randomness: no timer,
 * no file, no Vault. The loop around it is tested in test/watch-clock.test.ts (fake clock) and
 * test/watch.integration.test.ts (the CLI).
 */
import { describe, expect, it } from "vitest";
import type { Schedule, ScheduleConfig } from "./schedule.js";
import {
  addTrigger,
  due,
  eventArrived,
  eventsSettled,
  initialSchedule,
  jitter,
  layoutRejected,
  lifecycleDue,
  lifecycleScheduled,
  onlyHeal,
  passDone,
  passFailed,
  passSucceeded,
  ready,
  reloadRequested,
  retryDelay,
  started,
  stopRequested,
  take,
  trigger,
  waitMs,
  wakeAt,
} from "./schedule.js";

const S = 1000;
const MIN = 60 * S;
const cfg: ScheduleConfig = { intervalMs: 5 * MIN, maxBackoffMs: 5 * MIN, healIntervalMs: 10 * S, debounceMs: 300 };
/** The middle of the jitter range: no spread. */
const MID = 0.5;
const T0 = 1_000_000;

/** Started at T0, its first pass done and succeeded at T0 (the interval next due at T0 + 5 min). */
function idle(): Schedule {
  const t = take(due(started(initialSchedule(), T0), T0, cfg).s, T0);
  return passDone(passSucceeded(t.s), T0, MID, cfg);
}

/** Idle, then a failed pass at `at` (a backoff of firstBackoff: 1 s at MID). */
function backingOff(at = T0, c: ScheduleConfig = cfg): Schedule {
  return passFailed(idle(), at, MID, c);
}

describe("the start", () => {
  it("before the loop starts nothing is due but the interval, and no lifecycle is known", () => {
    const s = initialSchedule();
    expect(s.triggers).toEqual([]);
    expect(s.nextIntervalAt).toBe(0);
    expect(s.nextLifecycleAt).toBe(Infinity);
    expect(s.failures).toBe(0);
    expect(s.notBefore).toBe(0);
  });

  it("started: the start pass runs at once, with the interval, and heal scans count from the start", () => {
    const s = started(initialSchedule(), T0);
    expect(s.lastHealScan).toBe(T0);
    const d = due(s, T0, cfg);
    expect(d.healScan).toBe(false);
    expect(ready(d.s, T0)).toBe(true);
    const t = take(d.s, T0);
    expect(t.reasons).toEqual(["start", "interval"]);
    expect(t.reason).toBe("start");
  });

  it("a reload that arrived while the first layout loaded keeps its place; the pass is still the start's", () => {
    const r = reloadRequested(initialSchedule(), T0);
    const t = take(started(r.s, T0), T0);
    expect(t.reasons).toEqual(["layout", "start"]);
    expect(t.reason).toBe("start");
  });
});

describe("jitter and the retry delay", () => {
  it("jitter spreads evenly by ±10% by default, ±spread otherwise", () => {
    expect(jitter(1000, 0)).toBeCloseTo(900);
    expect(jitter(1000, MID)).toBeCloseTo(1000);
    expect(jitter(1000, 0.999999)).toBeCloseTo(1100, 2);
    expect(jitter(1000, 0, 0.2)).toBeCloseTo(800);
    expect(jitter(1000, 0.75, 0.2)).toBeCloseTo(1100);
  });

  it("the n-th retry waits the first backoff (default 1 s), doubling, up to the cap", () => {
    const c = { maxBackoffMs: 10 * S };
    expect([1, 2, 3, 4, 5, 6].map((n) => retryDelay(n, c))).toEqual([1 * S, 2 * S, 4 * S, 8 * S, 10 * S, 10 * S]);
    expect([1, 2, 3].map((n) => retryDelay(n, { maxBackoffMs: 5 * MIN, firstBackoffMs: 2 * MIN }))).toEqual([2 * MIN, 4 * MIN, 5 * MIN]);
    // A first backoff beyond the cap is capped.
    expect(retryDelay(1, { maxBackoffMs: 2 * MIN, firstBackoffMs: 5 * MIN })).toBe(2 * MIN);
  });
});

describe("the KV interval", () => {
  it("is due intervalMs (±10%) after the previous pass ended, not before", () => {
    const s = idle();
    expect(s.nextIntervalAt).toBe(T0 + 5 * MIN);
    expect(passDone(s, T0, 0, cfg).nextIntervalAt).toBeCloseTo(T0 + 4.5 * MIN);
    expect(due(s, T0 + 5 * MIN - 1, cfg).s.triggers).not.toContain("interval");
    expect(due(s, T0 + 5 * MIN, cfg).s.triggers).toContain("interval");
  });

  it("is counted from the end of every pass, a failed one too", () => {
    const s = passDone(backingOff(T0 + 7 * S), T0 + 7 * S, MID, cfg);
    expect(s.nextIntervalAt).toBe(T0 + 7 * S + 5 * MIN);
  });
});

describe("failures and the backoff", () => {
  it("a failed pass retries after the first backoff (±20%), doubling with each failure up to the cap", () => {
    const c = { ...cfg, maxBackoffMs: 5 * S };
    let s = idle();
    const waits: number[] = [];
    for (let i = 0; i < 5; i++) {
      s = passFailed(s, T0, MID, c);
      waits.push(s.notBefore - T0);
    }
    expect(waits).toEqual([1 * S, 2 * S, 4 * S, 5 * S, 5 * S]);
    expect(s.failures).toBe(5);
    expect(passFailed(idle(), T0, 0, c).backoffMs).toBeCloseTo(800);
    expect(passFailed(idle(), T0, 0.999999, c).backoffMs).toBeCloseTo(1200, 2);
  });

  it("firstBackoffMs sets the first delay", () => {
    const s = backingOff(T0, { ...cfg, firstBackoffMs: 5 * MIN });
    expect(s.notBefore).toBe(T0 + 5 * MIN);
    expect(s.backoffMs).toBe(5 * MIN);
  });

  it("a failed pass is retried: the retry is a reason, held until the backoff ends", () => {
    const s = backingOff();
    expect(s.triggers).toEqual(["retry"]);
    expect(ready(s, T0 + S - 1)).toBe(false);
    expect(ready(s, T0 + S)).toBe(true);
    expect(take(s, T0 + S).reason).toBe("retry");
  });

  it("a pass that succeeds ends the backoff: the next failure starts from the first delay again", () => {
    let s = passFailed(backingOff(), T0, MID, cfg);
    expect(s.failures).toBe(2);
    s = passSucceeded(take(s, T0 + 2 * S).s);
    expect({ failures: s.failures, backoffMs: s.backoffMs, notBefore: s.notBefore }).toEqual({ failures: 0, backoffMs: 0, notBefore: 0 });
    expect(passFailed(s, T0, MID, cfg).backoffMs).toBe(S);
  });

  it("during a backoff the loop sleeps one timer until it ends: no wake-up for the interval, the heal scan or a lifecycle", () => {
    const c = { ...cfg, firstBackoffMs: 5 * MIN, healIntervalMs: 10 * S };
    let s = passFailed(idle(), T0, MID, c);
    s = lifecycleScheduled(s, T0 + MIN, T0, () => MID, c);
    expect(wakeAt(s, c)).toBe(T0 + 5 * MIN);
    // Woken anyway (a heal scan's interval passed): still the backoff's end, and nothing runs.
    const d = due(s, T0 + 2 * MIN, c);
    expect(d.healScan).toBe(true);
    expect(d.s.triggers).toEqual(["retry", "lifecycle"]);
    expect(ready(d.s, T0 + 2 * MIN)).toBe(false);
    expect(wakeAt(d.s, c)).toBe(T0 + 5 * MIN);
  });

  it("a trigger during a backoff does not wake the loop; outside one it does", () => {
    const b = trigger(backingOff(), "heal", T0 + 500);
    expect(b.wake).toBe(false);
    expect(b.s.triggers).toEqual(["retry", "heal"]);
    expect(trigger(backingOff(), "heal", T0 + S).wake).toBe(true);
    expect(trigger(idle(), "heal", T0).wake).toBe(true);
  });
});

describe("reload and stop", () => {
  it("a reload (SIGHUP) wakes the loop even during a backoff, and the pass runs at once, marked forced", () => {
    const r = reloadRequested(backingOff(), T0 + 500);
    expect(r.wake).toBe(true);
    expect(r.s.forceNow).toBe(true);
    expect(ready(r.s, T0 + 500)).toBe(true);
    expect(waitMs(r.s, T0 + S, T0 + 500)).toBe(0);
    const t = take(r.s, T0 + 500);
    expect(t.forced).toBe(true);
    expect(t.reasons).toEqual(["retry", "layout"]);
    expect(t.s.forceNow).toBe(false);
    expect(t.s.triggers).toEqual([]);
  });

  it("a reload outside a backoff is not marked forced", () => {
    const t = take(reloadRequested(idle(), T0 + S).s, T0 + S);
    expect(t.forced).toBe(false);
    expect(t.reason).toBe("layout");
  });

  it("an invalid layout: the last good one keeps running, and the other reasons wait for their time", () => {
    const t = take(reloadRequested(backingOff(), T0 + 500).s, T0 + 500);
    const s = layoutRejected(t.s, t.reasons);
    expect(s.triggers).toEqual(["retry"]);
    expect(s.forceNow).toBe(false);
    expect(ready(s, T0 + 500)).toBe(false);
    expect(wakeAt(s, cfg)).toBe(T0 + S);
  });

  it("a stop ends any wait at once and drops pending file events", () => {
    let s = eventArrived(idle(), "heal", T0, cfg);
    s = stopRequested(s);
    expect(s.stopping).toBe(true);
    expect(waitMs(s, T0 + MIN, T0)).toBe(0);
    expect(s.debouncing).toEqual([]);
    expect(s.debounceAt).toBeNull();
    expect(eventArrived(s, "layout", T0, cfg)).toBe(s);
  });
});

describe("the wait", () => {
  it("idle: until the first of the interval, the next lifecycle and the next heal scan", () => {
    let s = idle();
    expect(wakeAt(s, cfg)).toBe(T0 + 10 * S);
    expect(wakeAt(s, { ...cfg, healIntervalMs: 10 * MIN })).toBe(T0 + 5 * MIN);
    s = lifecycleScheduled(s, T0 + 2 * MIN, T0, () => MID, cfg);
    expect(wakeAt(s, { ...cfg, healIntervalMs: 10 * MIN })).toBe(T0 + 2 * MIN);
  });

  it("a time already past (or now) means no wait", () => {
    const s = idle();
    expect(waitMs(s, T0 + 5, T0)).toBe(5);
    expect(waitMs(s, T0, T0)).toBe(0);
    expect(waitMs(s, T0 - 5, T0)).toBe(0);
    expect(waitMs(s, NaN, T0)).toBe(0);
  });

  it("nothing due: no pass", () => {
    const s = idle();
    expect(due(s, T0 + S, cfg).s.triggers).toEqual([]);
    expect(ready(s, T0 + S)).toBe(false);
  });
});

describe("the heal scan", () => {
  it("runs once every healIntervalMs, counted from the last scan", () => {
    const s = idle();
    expect(due(s, T0 + 10 * S - 1, cfg).healScan).toBe(false);
    const d = due(s, T0 + 10 * S, cfg);
    expect(d.healScan).toBe(true);
    expect(d.s.lastHealScan).toBe(T0 + 10 * S);
    expect(due(d.s, T0 + 15 * S, cfg).healScan).toBe(false);
    expect(wakeAt(d.s, cfg)).toBe(T0 + 20 * S);
  });

  it("a heal alone may be our own writes (checked again before the pass); with anything else it is not", () => {
    expect(onlyHeal(["heal"])).toBe(true);
    expect(onlyHeal(["heal", "interval"])).toBe(false);
    expect(onlyHeal(["interval"])).toBe(false);
  });
});

describe("file events (debounce)", () => {
  it("settle debounceMs after the last event, with each reason once, in the order they arrived", () => {
    let s = eventArrived(idle(), "heal", T0, cfg);
    expect(s.debounceAt).toBe(T0 + 300);
    s = eventArrived(s, "layout", T0 + 200, cfg);
    s = eventArrived(s, "heal", T0 + 250, cfg);
    expect(s.debounceAt).toBe(T0 + 550);
    expect(s.debouncing).toEqual(["heal", "layout"]);
    expect(s.triggers).toEqual([]);
    const e = eventsSettled(s, T0 + 550);
    expect(e.s.triggers).toEqual(["heal", "layout"]);
    expect(e.s.debouncing).toEqual([]);
    expect(e.s.debounceAt).toBeNull();
  });

  it("a layout edit is forced like a reload: it wakes the loop during a backoff", () => {
    const e = eventsSettled(eventArrived(backingOff(), "layout", T0, cfg), T0 + 300);
    expect(e.s.forceNow).toBe(true);
    expect(e.wake).toBe(true);
    expect(take(e.s, T0 + 300).forced).toBe(true);
  });

  it("a managed file's event during a backoff does not wake it; outside one it does", () => {
    const b = eventsSettled(eventArrived(backingOff(), "heal", T0, cfg), T0 + 300);
    expect(b.wake).toBe(false);
    expect(b.s.forceNow).toBe(false);
    expect(wakeAt(b.s, cfg)).toBe(T0 + S);
    const i = eventsSettled(eventArrived(idle(), "heal", T0, cfg), T0 + 300);
    expect(i.wake).toBe(true);
  });

  it("settling with nothing pending changes nothing", () => {
    const e = eventsSettled(idle(), T0);
    expect(e.wake).toBe(false);
    expect(e.s.triggers).toEqual([]);
  });
});

describe("reasons", () => {
  it("are a set in arrival order: the pass is logged under the first, or the start", () => {
    let s = addTrigger(addTrigger(addTrigger(idle(), "interval"), "heal"), "interval");
    expect(s.triggers).toEqual(["interval", "heal"]);
    expect(take(s, T0).reason).toBe("interval");
    s = addTrigger(s, "start");
    expect(take(s, T0).reason).toBe("start");
  });
});

describe("lifecycles", () => {
  it("the next action is scheduled when it is due, and its pass runs then", () => {
    const s = lifecycleScheduled(idle(), T0 + 3 * MIN, T0 + S, () => MID, cfg);
    expect(s.nextLifecycleAt).toBe(T0 + 3 * MIN);
    expect(s.lifecycleRetries).toBe(0);
    expect(due(s, T0 + 3 * MIN - 1, cfg).s.triggers).not.toContain("lifecycle");
    expect(due(s, T0 + 3 * MIN, cfg).s.triggers).toContain("lifecycle");
  });

  it("still due after its pass (renewal refused): retried after a doubling backoff (±20%), not in a loop of passes", () => {
    const c = { ...cfg, firstBackoffMs: 5 * MIN, maxBackoffMs: 12 * MIN };
    let s = idle();
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      s = lifecycleScheduled(s, T0, T0, () => MID, c);
      waits.push(s.nextLifecycleAt - T0);
    }
    expect(waits).toEqual([5 * MIN, 10 * MIN, 12 * MIN, 12 * MIN]);
    expect(s.lifecycleRetries).toBe(4);
    expect(lifecycleScheduled(idle(), T0, T0, () => 0, c).nextLifecycleAt - T0).toBeCloseTo(4 * MIN);
    expect(lifecycleScheduled(idle(), T0, T0, () => 0.999999, c).nextLifecycleAt - T0).toBeCloseTo(6 * MIN, 0);
    // Due in the future again: the retries start over.
    s = lifecycleScheduled(s, T0 + 48 * 60 * MIN, T0, () => MID, c);
    expect(s.lifecycleRetries).toBe(0);
    expect(lifecycleScheduled(s, T0, T0, () => MID, c).nextLifecycleAt - T0).toBe(5 * MIN);
  });

  it("the lifecycle retries are counted apart from failed passes", () => {
    const s = lifecycleScheduled(passFailed(passFailed(idle(), T0, MID, cfg), T0, MID, cfg), T0, T0, () => MID, cfg);
    expect(s.failures).toBe(2);
    expect(s.nextLifecycleAt - T0).toBe(S);
  });

  it("randomness is drawn only for a retry", () => {
    let draws = 0;
    const rnd = () => (draws++, MID);
    lifecycleScheduled(idle(), T0 + MIN, T0, rnd, cfg);
    expect(draws).toBe(0);
    lifecycleScheduled(idle(), T0, T0, rnd, cfg);
    expect(draws).toBe(1);
  });

  it("nothing in state: nothing due", () => {
    expect(lifecycleDue({ passAt: T0, tokenTtlSec: 0, leases: [], certificates: [] })).toBe(Infinity);
    const s = lifecycleScheduled(idle(), Infinity, T0, () => MID, cfg);
    expect(s.nextLifecycleAt).toBe(Infinity);
    expect(wakeAt(s, { ...cfg, healIntervalMs: Infinity })).toBe(T0 + 5 * MIN);
  });

  it("the token: a second after half its TTL, counted from the pass's start", () => {
    expect(lifecycleDue({ passAt: T0, tokenTtlSec: 3600, leases: [], certificates: [] })).toBe(T0 + 1800 * S + S);
  });

  it("a lease: a second after its renewal threshold before expiry", () => {
    expect(lifecycleDue({ passAt: T0, tokenTtlSec: 0, leases: [{ expiresAt: T0 + 60 * MIN, thresholdMs: 30 * MIN }], certificates: [] })).toBe(T0 + 30 * MIN + S);
  });

  it("a certificate: a second after renewBefore before notAfter — a fraction of its lifetime (default 0.33) or a duration", () => {
    const cert = { notBefore: T0, notAfter: T0 + 100 * MIN };
    const at = (renewBefore?: number | string) => lifecycleDue({ passAt: T0, tokenTtlSec: 0, leases: [], certificates: [{ ...cert, renewBefore }] });
    expect(at()).toBeCloseTo(T0 + 67 * MIN + S);
    expect(at(0.5)).toBe(T0 + 50 * MIN + S);
    expect(at("10m")).toBe(T0 + 90 * MIN + S);
  });

  it("the earliest of them all", () => {
    const x = { passAt: T0, tokenTtlSec: 3600, leases: [{ expiresAt: T0 + 90 * MIN, thresholdMs: 30 * MIN }, { expiresAt: T0 + 40 * MIN, thresholdMs: 20 * MIN }], certificates: [{ notBefore: T0, notAfter: T0 + 72 * 60 * MIN, renewBefore: "24h" }] };
    expect(lifecycleDue(x)).toBe(T0 + 20 * MIN + S);
    expect(lifecycleDue({ ...x, leases: [] })).toBe(T0 + 30 * MIN + S);
  });
});
