#!/usr/bin/env node
import { main } from "../dist/cli.js";

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`vault-render: internal error: ${e && e.message ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
