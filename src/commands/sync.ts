import type { Command } from "commander";
import type { CommandContext } from "./context.js";
import { commonSyncOptions, formatFor, levelFor } from "./context.js";

export function registerSync(program: Command, ctx: CommandContext): void {
  program
    .command("sync")
    .description("render every output from Vault into public/ (silent on success; -v for a summary)")
    .option("-n, --dry-run", "show the plan (files and key names, never values) and write nothing")
    .option("--no-hooks", "leave hooks pending instead of running them")
    .option("--run-hooks", "run every hook of the layout, changed or not")
    .option("--lock-timeout <duration>", "how long to wait for another run's lock", "30s")
    .action(async (_opts: unknown, cmd: Command) => {
      const [{ parseOptions, syncOptions }, { runSync }] = await Promise.all([import("./options.js"), import("../core/sync/sync.js")]);
      const o = parseOptions(syncOptions, cmd.optsWithGlobals());
      const res = await runSync({
        ...commonSyncOptions(ctx, o),
        log: ctx.logger(levelFor(o, "warn"), formatFor(o, ctx)),
        dryRun: o.dryRun,
        lockTimeoutMs: o.lockTimeout,
        noHooks: !o.hooks,
        runHooks: o.runHooks,
      });
      ctx.setExit(res.exit);
    });
}
