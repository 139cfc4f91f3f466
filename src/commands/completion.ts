import type { Command, Option } from "commander";
import type { CommandContext } from "./context.js";
import type { CompletionOption, CompletionSpec } from "../core/completion/completion.js";

/** The program's commands and options as commander holds them (the script is generated from these). */
function completionSpec(program: Command): CompletionSpec {
  const option = (o: Option): CompletionOption => ({
    long: o.long ?? o.flags,
    short: o.short,
    takesValue: o.required || o.optional,
    valueName: /<([^>]+)>|\[([^\]]+)\]/.exec(o.flags)?.slice(1).find((x) => x !== undefined),
    choices: o.argChoices,
    description: o.description,
  });
  return {
    name: program.name(),
    options: program.options.map(option),
    commands: program.commands.map((c) => ({
      name: c.name(),
      description: c.description(),
      options: c.options.map(option),
      args: c.registeredArguments.map((a) => ({ name: a.name(), choices: a.argChoices })),
    })),
  };
}

export function registerCompletion(program: Command, ctx: CommandContext): void {
  program
    .command("completion")
    .description("print a shell completion script (bash, zsh or fish) for vault-render")
    .addArgument(program.createArgument("<shell>", "bash, zsh or fish").choices(["bash", "zsh", "fish"]))
    .action(async (shell: string, _opts: unknown, cmd: Command) => {
      const [{ parseOptions, completionOptions }, { completionScript }] = await Promise.all([import("./options.js"), import("../core/completion/completion.js")]);
      const o = parseOptions(completionOptions, { ...cmd.optsWithGlobals(), shell });
      ctx.stdout.write(completionScript(o.shell, completionSpec(program)));
      ctx.setExit(0);
    });
}
