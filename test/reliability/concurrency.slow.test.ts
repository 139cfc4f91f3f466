/**
 * Concurrency (docs/reliability.md §3) at the CI size: 20 simultaneous syncs plus a rotate, 3
 * holders killed -9 with 5 waiters each (STRESS=1: 60 and 20); concurrency.test.ts runs fewer,
 * and the short --lock-timeout case.
 */
import { describeConcurrency } from "./concurrency-suite.js";
import { budget, size } from "./support.js";

describeConcurrency({ runs: size(20, 60), kills: size(3, 20), shortTimeout: false, timeoutMs: budget(60_000, 300_000) });
