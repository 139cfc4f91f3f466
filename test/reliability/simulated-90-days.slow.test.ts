/**
 * The full 90 simulated days of cron (see simulation.ts): 25,920 in-process runs, a 30-day
 * certificate renewed 10 days before expiry. Slow (`npm run test:slow`, ~6-8 min on an idle
 * 2-core machine); `npm test` runs the 2-day calendar (`simulated-days.test.ts`).
 * SIM_DAYS=n shortens a local run of this calendar (the certificate keeps its 30/10 days).
 */
import { describe, it } from "vitest";
import { NINETY_DAYS, simulateCron } from "./simulation.js";
import { scaled } from "./support.js";

const days = Number(process.env.SIM_DAYS ?? NINETY_DAYS.days);

describe(`${days} simulated days of cron`, () => {
  it(
    "sync every 5 minutes: at every simulated minute the token, the lease's credentials and the certificate on disk are live, KV is at most 5 minutes stale; requests per day bounded",
    () => simulateCron({ ...NINETY_DAYS, days }),
    // 25,920 runs at ~16 ms each on an idle 2-core machine (docs/reliability.md); a limit for a
    // slow or busy one.
    scaled(3_600_000),
  );
});
