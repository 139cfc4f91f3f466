import type { Command } from "commander";
import type { CommandContext } from "./context.js";
import { formatFor, levelFor } from "./context.js";

export function registerCheck(program: Command, ctx: CommandContext): void {
  program
    .command("check")
    .description("verify without writing: Vault, auth, sources, files, modes, drift, certificates, exposure (exit 0 ok, 1 problems, 2 invalid layout, 3 could not verify)")
    .option("--offline", "only what needs no Vault: layout, files, modes, certificates, validators, state age, exposure")
    .option("--json", "machine-readable report (see docs/check.md)")
    .option("--min-validity <duration>", "certificates must stay valid at least this long", "7d")
    .option("--min-token-ttl <duration>", "warn when the token has less than this left", "10m")
    .option("--max-age <duration>", "fail when the last successful sync is older than this")
    .action(async (_opts: unknown, cmd: Command) => {
      const [{ parseOptions, checkOptions }, { runCheck, formatReport }] = await Promise.all([import("./options.js"), import("../core/check/check.js")]);
      const o = parseOptions(checkOptions, cmd.optsWithGlobals());
      const report = await runCheck({
        layoutFile: o.layout,
        env: ctx.env,
        offline: o.offline,
        minValidityMs: o.minValidity,
        minTokenTtlMs: o.minTokenTtl,
        maxAgeMs: o.maxAge,
        log: ctx.logger(levelFor(o, "silent"), formatFor(o, ctx)),
        redactor: ctx.redactor,
        clock: ctx.clock,
      });
      const color = ctx.stdoutIsTTY && !ctx.env.NO_COLOR;
      const text = o.json ? JSON.stringify(report, null, 2) + "\n" : formatReport(report, color);
      ctx.stdout.write(ctx.redactor.redact(text));
      ctx.setExit(report.exit);
    });
}
