import type { Command } from "commander";
import type { CommandContext } from "./context.js";

export function registerSchema(program: Command, ctx: CommandContext): void {
  program
    .command("schema")
    .description("print the layout file's JSON Schema")
    .action(async (_opts: unknown, cmd: Command) => {
      // Only the global options; `vault-render schema` alone never gets here (src/cli.ts prints the prebuilt file).
      const [{ parseOptions, globalOptions }, { layoutJsonSchema }] = await Promise.all([import("./options.js"), import("../core/layout/schema.js")]);
      parseOptions(globalOptions, cmd.optsWithGlobals());
      ctx.stdout.write(JSON.stringify(layoutJsonSchema(), null, 2) + "\n");
    });
}
