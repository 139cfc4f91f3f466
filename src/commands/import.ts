import type { Command } from "commander";
import type { CommandContext } from "./context.js";

export function registerImport(program: Command, ctx: CommandContext): void {
  program
    .command("import")
    .description("write a layout (and its templates) equivalent to a Vault Agent or consul-template config; list what cannot be translated with file:line")
    .argument("<config-file>", "the Vault Agent or consul-template config (HCL or JSON)")
    .requiredOption("--out <layout.json>", "the layout file to write (templates/ is written beside it)")
    .option("--from <kind>", "agent or consul-template (default: detected from the config)")
    .option("--partial", "write the layout without the parts that cannot be translated (exit 0 unless nothing could be)")
    .option("--json", "print one JSON document: layout, templates, refusals, notes, counts, exit code")
    .option("--force", "replace an existing --out (and template files)")
    .action(async (config: string, _opts: unknown, cmd: Command) => {
      const [{ parseOptions, importOptions }, { runImport }] = await Promise.all([import("./options.js"), import("../core/import/import.js")]);
      const o = parseOptions(importOptions, cmd.optsWithGlobals());
      const res = await runImport({ config, out: o.out, from: o.from, partial: o.partial, force: o.force });
      if (o.json) ctx.stdout.write(JSON.stringify(res, null, 2) + "\n");
      else {
        const lines: { file: string; line: number; text: string }[] = [
          ...res.refusals.map((r) => ({ file: r.file, line: r.line, text: `${r.construct}: ${r.reason}` })),
          ...res.notes.map((n) => ({ file: n.file, line: n.line, text: `note: ${n.text}` })),
        ];
        const fileRank = (f: string) => (f === config ? "" : f);
        lines.sort((a, b) => (fileRank(a.file) === fileRank(b.file) ? a.line - b.line : fileRank(a.file) < fileRank(b.file) ? -1 : 1));
        for (const l of lines) ctx.stderr.write(ctx.redactor.redact(`vault-render: import: ${l.file}:${l.line}: ${l.text}`) + "\n");
      }
      ctx.setExit(res.exitCode);
    });
}
