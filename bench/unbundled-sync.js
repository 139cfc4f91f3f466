// `node bench/unbundled-sync.js <layout>`: `vault-render sync` through tsc's per-file dist/core
// (not the bundle), so a CPU profile attributes time to source files and packages.
import { runSync } from "../dist/core/sync/sync.js";
import { createLogger } from "../dist/core/support/log.js";
import { Redactor } from "../dist/core/support/redact.js";
import { systemClock } from "../dist/core/support/clock.js";

const redactor = new Redactor();
const res = await runSync({
  layoutFile: process.argv[2],
  env: process.env,
  dryRun: false,
  lockTimeoutMs: 30_000,
  log: createLogger({ level: "warn", format: "pretty", out: process.stderr, redactor }),
  redactor,
  clock: systemClock,
  print: (l) => process.stdout.write(l + "\n"),
});
process.exitCode = res.exit;
