import type { Command } from "commander";
import type { CommandContext, GlobalOptions } from "./context.js";
import { commonSyncOptions, formatFor, levelFor, parseLockTimeout } from "./context.js";

export function registerSync(program: Command, ctx: CommandContext): void {
  program
    .command("sync")
    .description("render every output from Vault into public/ (silent on success; -v for a summary)")
    .option("-n, --dry-run", "show the plan (files and key names, never values) and write nothing")
    .option("--no-hooks", "leave hooks pending instead of running them")
    .option("--run-hooks", "run every hook of the layout, changed or not")
    .option("--lock-timeout <duration>", "how long to wait for another run's lock", "30s")
    .action(async (opts: { dryRun?: boolean; hooks: boolean; runHooks?: boolean; lockTimeout: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const { runSync } = await import("../core/sync/sync.js");
      const res = await runSync({
        ...commonSyncOptions(ctx, g),
        log: ctx.logger(levelFor(g, "warn"), formatFor(g, ctx)),
        dryRun: opts.dryRun === true,
        lockTimeoutMs: parseLockTimeout(opts.lockTimeout),
        noHooks: !opts.hooks,
        runHooks: opts.runHooks === true,
      });
      ctx.setExit(res.exit);
    });
}
