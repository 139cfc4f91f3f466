/**
 * Crash safety at the CI size (docs/reliability.md §1): 30 random kills -9 of changing syncs
 * (STRESS=1: 300), each checked after the kill and after the next sync. crash.test.ts runs a few
 * of them in `npm test`, and the deterministic kills.
 */
import { afterAll, beforeAll, describe, it } from "vitest";
import type { Tree } from "../helpers.js";
import { crashTree, killTrials } from "./crash-fixture.js";
import { budget, scaled, size } from "./support.js";

let t: Tree;
beforeAll(async () => {
  t = await crashTree();
}, scaled(30_000));
afterAll(async () => {
  await t?.cleanup();
});

describe("kill -9 during syncs that change many files", () => {
  const trials = size(30, 300);
  it(`${trials} random kills (every 3rd a forced certificate rotation, every 4th a certificate request change)`, () => killTrials(t, trials, { n: 0 }), budget(150_000, 1_500_000));
});
