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
    .option("--json", "one JSON summary on stdout: files, actions, key names, errors, counts, exit (docs/operations.md)")
    .option("--metrics-file <path>", "write Prometheus metrics for node_exporter's textfile collector (atomic, 0644), also after a failed run")
    .action(async (_opts: unknown, cmd: Command) => {
      const [{ parseOptions, syncOptions }, { runSyncReported, syncSummary }] = await Promise.all([import("./options.js"), import("../core/sync/outcome.js")]);
      const o = parseOptions(syncOptions, cmd.optsWithGlobals());
      // With --json stdout carries the one document: the dry run's plan lines go into it.
      const plan: string[] = [];
      const out = await runSyncReported({
        ...commonSyncOptions(ctx, o),
        ...(o.json ? { print: (line: string) => void plan.push(line) } : {}),
        log: ctx.logger(levelFor(o, "warn"), formatFor(o, ctx)),
        dryRun: o.dryRun,
        lockTimeoutMs: o.lockTimeout,
        noHooks: !o.hooks,
        runHooks: o.runHooks,
        ...(o.metricsFile !== undefined ? { metricsFile: o.metricsFile } : {}),
      });
      if (o.json) ctx.stdout.write(ctx.redactor.redact(JSON.stringify(syncSummary(out, o.dryRun, plan), null, 2) + "\n"));
      // The entry point reports what ended the run (one line on stderr) and exits with its code.
      if (out.error !== undefined) throw out.error;
      ctx.setExit(out.facts.exit);
    });
}
