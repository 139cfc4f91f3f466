import type { Command } from "commander";
import type { CommandContext } from "./context.js";
import { commonSyncOptions, formatFor, levelFor, parseLockTimeout } from "./context.js";
import type { GlobalOptions } from "./context.js";

export function registerRotate(program: Command, ctx: CommandContext): void {
  program
    .command("rotate")
    .description("rotate now: a new certificate, new leased credentials, or a new generated KV value (then render and run hooks)")
    .argument("[outputs...]", "outputs to rotate (file, or a PKI set's directory)")
    .option("--secret-id", "generate a new AppRole secret_id, prove it logs in, and replace the secret_id file")
    .option("-n, --dry-run", "say what would be rotated and write nothing")
    .option("--no-hooks", "leave hooks pending instead of running them")
    .option("--lock-timeout <duration>", "how long to wait for another run's lock", "30s")
    .action(async (targets: string[], opts: { secretId?: boolean; dryRun?: boolean; hooks: boolean; lockTimeout: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const { runRotate } = await import("../core/rotate/rotate.js");
      const res = await runRotate({
        ...commonSyncOptions(ctx, g),
        log: ctx.logger(levelFor(g, "info"), formatFor(g, ctx)),
        dryRun: opts.dryRun === true,
        lockTimeoutMs: parseLockTimeout(opts.lockTimeout),
        noHooks: !opts.hooks,
        targets,
        secretId: opts.secretId === true,
      });
      ctx.setExit(res.exit);
    });
}
