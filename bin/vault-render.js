#!/usr/bin/env node
import { main, processHost } from "../dist/cli.js";

main(process.argv.slice(2), processHost()).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`vault-render: internal error: ${e && e.message ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
