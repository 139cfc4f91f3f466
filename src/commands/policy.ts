import type { Command } from "commander";
import type { CommandContext } from "./context.js";

export function registerPolicy(program: Command, ctx: CommandContext): void {
  program
    .command("policy")
    .description("print the minimal Vault policy (HCL) this layout's AppRole needs (no Vault, no token)")
    .option("--json", "print { path: capabilities[] } as JSON instead of HCL")
    .action(async (_opts: unknown, cmd: Command) => {
      const [{ parseOptions, policyOptions }, { runPolicy }] = await Promise.all([import("./options.js"), import("../core/policy/policy.js")]);
      const o = parseOptions(policyOptions, cmd.optsWithGlobals());
      const res = await runPolicy({ layoutFile: o.layout, env: ctx.env, format: o.json ? "json" : "hcl" });
      ctx.stdout.write(res.text);
      for (const w of res.warnings) ctx.stderr.write(ctx.redactor.redact(`vault-render: warn: ${w}`) + "\n");
      ctx.setExit(0);
    });
}
