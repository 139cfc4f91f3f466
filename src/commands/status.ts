import type { Command } from "commander";
import type { CommandContext, GlobalOptions } from "./context.js";

export function registerStatus(program: Command, ctx: CommandContext): void {
  program
    .command("status")
    .description("offline overview per output: versions, last written, expiries, errors, pending hooks (no Vault call)")
    .option("--json", "machine-readable output")
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const { runStatus, formatStatus } = await import("../core/status.js");
      const report = await runStatus({ layoutFile: g.layout, env: ctx.env, now: ctx.clock.now() });
      ctx.stdout.write(opts.json ? JSON.stringify(report, null, 2) + "\n" : formatStatus(report));
    });
}
