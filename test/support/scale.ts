/**
 * One scale factor for every test timeout and every wait in the test helpers: VR_TEST_SCALE
 * (default 1). A slow machine (a Raspberry Pi, a CI runner shared with other jobs) sets
 * VR_TEST_SCALE=3 and every budget grows with it; no test asserts on elapsed time. The vitest
 * testTimeout/hookTimeout (vitest.config.ts) come from it too.
 */
const TEST_SCALE: number = (() => {
  // TEST_TIME_SCALE: the older name, still read where VR_TEST_SCALE is not set.
  const raw = process.env.VR_TEST_SCALE ?? process.env.TEST_TIME_SCALE;
  if (raw === undefined || raw === "") return 1;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`VR_TEST_SCALE: "${raw}" is not a positive number`);
  return n;
})();

/** `ms` scaled by VR_TEST_SCALE: use for every test timeout and every wait budget. */
export function scaled(ms: number): number {
  return Math.ceil(ms * TEST_SCALE);
}
