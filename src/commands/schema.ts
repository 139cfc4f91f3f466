import type { Command } from "commander";
import type { CommandContext } from "./context.js";

export function registerSchema(program: Command, ctx: CommandContext): void {
  program
    .command("schema")
    .description("print the layout file's JSON Schema")
    .action(async () => {
      const { layoutJsonSchema } = await import("../core/layout/schema.js");
      ctx.stdout.write(JSON.stringify(layoutJsonSchema(), null, 2) + "\n");
    });
}
