import type { Command } from "commander";
import type { CommandContext } from "./context.js";
import { commonSyncOptions, formatFor, levelFor } from "./context.js";

export function registerRotate(program: Command, ctx: CommandContext): void {
  program
    .command("rotate")
    .description("rotate now: a new certificate, new leased credentials, or a new generated KV value (then render and run hooks)")
    .argument("[outputs...]", "outputs to rotate (file, or a PKI set's directory)")
    .option("--secret-id", "generate a new AppRole secret_id, prove it logs in, and replace the secret_id file")
    .option("-n, --dry-run", "say what would be rotated and write nothing")
    .option("--no-hooks", "leave hooks pending instead of running them")
    .option("--lock-timeout <duration>", "how long to wait for another run's lock", "30s")
    .action(async (targets: string[], _opts: unknown, cmd: Command) => {
      const [{ parseOptions, rotateOptions }, { runRotate }] = await Promise.all([import("./options.js"), import("../core/rotate/rotate.js")]);
      const o = parseOptions(rotateOptions, { ...cmd.optsWithGlobals(), targets });
      const res = await runRotate({
        ...commonSyncOptions(ctx, o),
        log: ctx.logger(levelFor(o, "info"), formatFor(o, ctx)),
        dryRun: o.dryRun,
        lockTimeoutMs: o.lockTimeout,
        noHooks: !o.hooks,
        targets: o.targets,
        secretId: o.secretId,
      });
      ctx.setExit(res.exit);
    });
}
