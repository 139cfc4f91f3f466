#!/usr/bin/env node
// The built CLI with its test hooks: what bin/vault-render.js runs, plus the hooks that
// test/support/test-hooks.js reads from VAULT_RENDER_TEST_* (the production bin ignores them).
import { main, processHost } from "../../dist/cli.js";
import { hooksFromEnv } from "./test-hooks.js";

const host = processHost();
host.testHooks = hooksFromEnv(process.env, () => process.kill(process.pid, "SIGKILL"));
main(process.argv.slice(2), host).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`vault-render: internal error: ${e && e.message ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
