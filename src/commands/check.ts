import type { Command } from "commander";
import type { CommandContext, GlobalOptions } from "./context.js";
import { formatFor, levelFor } from "./context.js";

export function registerCheck(program: Command, ctx: CommandContext): void {
  program
    .command("check")
    .description("verify without writing: Vault, auth, sources, files, modes, drift, certificates, exposure (exit 0 ok, 1 problems, 2 invalid layout, 3 could not verify)")
    .option("--offline", "only what needs no Vault: layout, files, modes, certificates, state age, exposure")
    .option("--json", "machine-readable report (see docs/check.md)")
    .option("--min-validity <duration>", "certificates must stay valid at least this long", "7d")
    .option("--min-token-ttl <duration>", "warn when the token has less than this left", "10m")
    .option("--max-age <duration>", "fail when the last successful sync is older than this")
    .action(async (opts: { offline?: boolean; json?: boolean; minValidity: string; minTokenTtl: string; maxAge?: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const { runCheck, formatReport, parseCheckDuration } = await import("../core/check/check.js");
      const report = await runCheck({
        layoutFile: g.layout,
        env: ctx.env,
        offline: opts.offline === true,
        minValidityMs: parseCheckDuration("--min-validity", opts.minValidity),
        minTokenTtlMs: parseCheckDuration("--min-token-ttl", opts.minTokenTtl),
        maxAgeMs: opts.maxAge === undefined ? undefined : parseCheckDuration("--max-age", opts.maxAge),
        log: ctx.logger(levelFor(g, "silent"), formatFor(g, ctx)),
        redactor: ctx.redactor,
        clock: ctx.clock,
      });
      const color = ctx.stdoutIsTTY && !ctx.env.NO_COLOR;
      const text = opts.json ? JSON.stringify(report, null, 2) + "\n" : formatReport(report, color);
      ctx.stdout.write(ctx.redactor.redact(text));
      ctx.setExit(report.exit);
    });
}
