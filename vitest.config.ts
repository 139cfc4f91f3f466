import { defineConfig } from "vitest/config";
import { scaled } from "./test/support/scale.js";

/**
 * Two tiers (docs/testing.md):
 * - `npm test` runs every `*.test.ts` except the slow ones;
 * - `npm run test:slow` runs only the files named `*.slow.test.ts` (long reliability runs, at
 *   their CI sizes; STRESS=1 for the big ones). .ci/run runs both.
 * VR_TEST_SCALE (default 1) scales every timeout here and in the test helpers (test/support/scale.ts).
 */
const SLOW = ["src/**/*.slow.test.ts", "test/**/*.slow.test.ts"];
const slow = process.env.VR_TEST_TIER === "slow";

export default defineConfig({
  test: {
    include: slow ? SLOW : ["src/**/*.test.ts", "test/**/*.test.ts"],
    exclude: slow ? ["**/node_modules/**"] : ["**/node_modules/**", ...SLOW],
    testTimeout: scaled(30_000),
    hookTimeout: scaled(30_000),
    // Forks, not threads: in-process runs (test/support/in-process.ts) set process.umask() and
    // process.chdir(), which worker threads do not allow; each file gets a fresh module graph
    // (isolate), so nothing a file's runs cache reaches another file.
    pool: "forks",
    restoreMocks: true,
  },
});
