import type { Command } from "commander";
import type { CommandContext } from "./context.js";

export function registerStatus(program: Command, ctx: CommandContext): void {
  program
    .command("status")
    .description("offline overview per output: versions, last written, expiries, errors, pending hooks (no Vault call)")
    .option("--json", "machine-readable output")
    .action(async (_opts: unknown, cmd: Command) => {
      const { parseOptions, statusOptions } = await import("./options.js");
      const o = parseOptions(statusOptions, cmd.optsWithGlobals());
      await printStatus(ctx, o.layout, o.json);
    });
}

/**
 * The whole command; src/cli.ts also calls it directly for a plain `status [--json]`, without
 * commander or the options schema (a shape it has matched already: no option to validate).
 */
export async function printStatus(ctx: CommandContext, layoutFile: string, json: boolean): Promise<void> {
  const { runStatus, formatStatus } = await import("../core/status/status.js");
  const report = await runStatus({ layoutFile, env: ctx.env, now: ctx.clock.now() });
  ctx.stdout.write(json ? JSON.stringify(report, null, 2) + "\n" : formatStatus(report));
}
