/** Time and randomness behind one seam, so the core can be driven by tests. */
export interface Clock {
  /** Properties, not methods: a clock's functions are handed around on their own (`sleep: clock.sleep`). */
  now: () => number;
  /**
   * Wait `ms`; resolves early (never rejects) as soon as `signal` is aborted, so a stop or reload
   * request ends any pending wait at once.
   */
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  random: () => number;
}

/** setTimeout's limit: longer delays would fire at once (a busy loop), so long waits are chained. */
const MAX_TIMER_MS = 2 ** 31 - 1;

function systemSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    let timer: NodeJS.Timeout;
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const arm = (left: number) => {
      timer = setTimeout(() => {
        if (left > MAX_TIMER_MS) return arm(left - MAX_TIMER_MS);
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, Math.max(0, Math.min(left, MAX_TIMER_MS)));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    arm(ms);
  });
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: systemSleep,
  random: () => Math.random(),
};

/** Run `fn` over `items` with at most `limit` in flight; results keep the input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      results[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
