/**
 * Concurrency (docs/reliability.md §3) at the size of `npm test`: 10 simultaneous syncs plus a
 * rotate (more than vault.concurrency's 8), waiters with a short --lock-timeout, one holder killed
 * -9 and recovered; the CI size (20 runs, 3 kills; STRESS=1: 60, 20) in concurrency.slow.test.ts.
 */
import { describeConcurrency } from "./concurrency-suite.js";
import { scaled } from "./support.js";

describeConcurrency({ runs: 10, kills: 1, shortTimeout: true, timeoutMs: scaled(60_000) });
