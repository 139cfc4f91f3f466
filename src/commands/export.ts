import type { Command } from "commander";
import type { CommandContext } from "./context.js";

export function registerExport(program: Command, ctx: CommandContext): void {
  program
    .command("export")
    .description("print Kubernetes manifests for the Vault Secrets Operator (vso) or External Secrets Operator (eso) that write the same files (no Vault call)")
    .requiredOption("--to <operator>", "vso or eso")
    .option("--namespace <ns>", "metadata.namespace of every object")
    .option("--interval <duration>", "how often KV secrets are re-read (VSO refreshAfter, ESO refreshInterval)", "5m")
    .option("--partial", "print the outputs that can be expressed even when some cannot (exit 0)")
    .option("--out <file>", "write the manifests to this file instead of stdout")
    .action(async (_opts: unknown, cmd: Command) => {
      const [{ parseOptions, exportOptions }, { runExport }, { findingLine }] = await Promise.all([
        import("./options.js"),
        import("../core/export/export.js"),
        import("../core/export/model.js"),
      ]);
      const o = parseOptions(exportOptions, cmd.optsWithGlobals());
      const res = await runExport({ layoutFile: o.layout, env: ctx.env, to: o.to, namespace: o.namespace, intervalMs: o.interval, partial: o.partial, outFile: o.out });
      for (const f of res.findings) ctx.stderr.write(ctx.redactor.redact(findingLine(f)) + "\n");
      if (res.written && res.outFile === undefined) ctx.stdout.write(res.text);
      ctx.setExit(res.skipped > 0 && !o.partial ? 1 : 0);
    });
}
