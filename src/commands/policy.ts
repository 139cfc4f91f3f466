import type { Command } from "commander";
import type { CommandContext, GlobalOptions } from "./context.js";

export function registerPolicy(program: Command, ctx: CommandContext): void {
  program
    .command("policy")
    .description("print the minimal Vault policy (HCL) this layout's AppRole needs (no Vault, no token)")
    .option("--json", "print { path: capabilities[] } as JSON instead of HCL")
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const { runPolicy } = await import("../core/policy/policy.js");
      const res = await runPolicy({ layoutFile: g.layout, env: ctx.env, format: opts.json ? "json" : "hcl" });
      ctx.stdout.write(res.text);
      for (const w of res.warnings) ctx.stderr.write(ctx.redactor.redact(`vault-render: warn: ${w}`) + "\n");
      ctx.setExit(0);
    });
}
