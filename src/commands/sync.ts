import type { Command } from "commander";
import { Option } from "commander";
import type { CommandContext, GlobalOptions } from "./context.js";
import { formatFor, levelFor } from "./context.js";
import { parseDuration } from "../core/duration.js";
import { ExitCode, VrError } from "../core/errors.js";

export function registerSync(program: Command, ctx: CommandContext): void {
  program
    .command("sync")
    .description("render every output from Vault into public/ (silent on success; -v for a summary)")
    .option("-n, --dry-run", "show the plan (files and key names, never values) and write nothing")
    .addOption(new Option("--lock-timeout <duration>", "how long to wait for another run's lock").default("30s"))
    .action(async (opts: { dryRun?: boolean; lockTimeout: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      let lockTimeoutMs: number;
      try {
        lockTimeoutMs = parseDuration(opts.lockTimeout);
      } catch {
        throw new VrError("USAGE", `--lock-timeout: "${opts.lockTimeout}" is not a duration (e.g. 30s, 2m)`, { exit: ExitCode.Usage });
      }
      const log = ctx.logger(levelFor(g, "warn"), formatFor(g, ctx));
      const { runSync } = await import("../core/sync.js");
      const res = await runSync({
        layoutFile: g.layout,
        env: ctx.env,
        dryRun: opts.dryRun === true,
        lockTimeoutMs,
        log,
        redactor: ctx.redactor,
        clock: ctx.clock,
        print: (line) => ctx.stdout.write(ctx.redactor.redact(line) + "\n"),
      });
      ctx.setExit(res.exit);
    });
}
