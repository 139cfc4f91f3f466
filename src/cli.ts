/**
 * The entry point: builds the commander program, hands each command its context, and is the only
 * place that turns errors into one clear line and an exit code.
 */
import { ExitCode, isVrError, oneLine } from "./core/support/errors.js";
import { systemClock } from "./core/support/clock.js";
import type { Clock } from "./core/support/clock.js";
import { Redactor } from "./core/support/redact.js";
import type * as LogModuleNs from "./core/support/log.js";
import type { CommandContext, TestHooks } from "./commands/context.js";
import type { Env } from "./core/layout/load.js";
import { defaultLayout } from "./commands/context.js";
import { registerSync } from "./commands/sync.js";
import { registerSchema } from "./commands/schema.js";
import { registerRotate } from "./commands/rotate.js";
import { registerCheck } from "./commands/check.js";
import { printStatus, registerStatus } from "./commands/status.js";
import { registerPolicy } from "./commands/policy.js";
import { registerWatch } from "./commands/watch.js";
import { registerInit } from "./commands/init.js";
import { registerCompletion } from "./commands/completion.js";
import { registerImport } from "./commands/import.js";
import { registerExport } from "./commands/export.js";
import { precomputedSchema, version } from "./build-info.js";

/**
 * Start-up cost (docs/benchmarks.md): a cron run pays for every module it loads. The log module
 * (pino) is loaded by a preAction hook, so --version/--help never load it, and commands that log
 * nothing (LOGLESS) skip it too; each command imports its core module lazily (zod, node-vault), and
 * a plain `status` does not load commander either.
 */
type LogModule = typeof LogModuleNs;
const LOGLESS = new Set(["schema", "status", "init", "completion", "import", "export"]);

/**
 * What a run gets from the world it runs in. The bin passes the real process (processHost); tests
 * pass captured streams and, only they, test hooks. Nothing below main reads `process.*` itself.
 */
export interface Host {
  env: Env;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdoutIsTTY: boolean;
  stderrIsTTY: boolean;
  clock: Clock;
  /** Test-only seams; the production bin never sets them (test/support/cli-with-hooks.js does). */
  testHooks?: TestHooks;
}

/** The real process: its environment, streams (EPIPE made quiet) and clock. */
export function processHost(): Host {
  ignoreEpipe(process.stdout);
  ignoreEpipe(process.stderr);
  return {
    env: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
    stdoutIsTTY: process.stdout.isTTY === true,
    stderrIsTTY: process.stderr.isTTY === true,
    clock: systemClock,
  };
}

/** The host's clock, moved by the test hook's offset (as the double's advanceTime moves Vault's). */
function hostClock(host: Host): Clock {
  const ms = host.testHooks?.nowOffsetMs ?? 0;
  if (ms === 0) return host.clock;
  const base = host.clock;
  return { ...base, now: () => base.now() + ms };
}

/**
 * A reader that goes away early (`vault-render --help | head -1`) makes the next write fail with
 * EPIPE, emitted as an 'error' event that would crash the process with a stack trace. Nobody is
 * left to read anything: carry on quietly (the run ends with its own exit code).
 */
function ignoreEpipe(stream: NodeJS.WriteStream): void {
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e;
    // Swallowed: later writes fail the same way, and the run ends with its own exit code.
  });
}

export type { TestHooks };

export async function main(argv: string[], host: Host): Promise<number> {
  const { env, stdout, stderr } = host;
  // `--version` needs nothing but the version (commander would print exactly this line).
  if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V")) {
    stdout.write(`${version}\n`);
    return ExitCode.Ok;
  }
  // `vault-render schema` prints the schema generated at build time (dist/vault-layout.schema.json,
  // the same bytes the zod schema gives), so it does not load zod.
  if (argv.length === 1 && argv[0] === "schema") {
    const text = precomputedSchema();
    if (text !== null) {
      stdout.write(text);
      return ExitCode.Ok;
    }
  }
  let exit: number = ExitCode.Ok;
  let logMod: LogModule | undefined;
  const redactor = new Redactor();
  const ctx: CommandContext = {
    env,
    stdout,
    stderr,
    isTTY: host.stderrIsTTY,
    stdoutIsTTY: host.stdoutIsTTY,
    clock: hostClock(host),
    redactor,
    logger: (level, format) => {
      if (!logMod) throw new Error("internal: the log module is not loaded for this command (see LOGLESS in src/cli.ts)");
      return logMod.createLogger({ level, format, out: stderr, redactor });
    },
    ...(host.testHooks ? { testHooks: host.testHooks } : {}),
    setExit: (c) => {
      exit = c;
    },
  };
  // A plain `status` / `status --json` (what a shell prompt or a monitoring script polls) needs no
  // option parsing: it runs the same action without loading commander. Anything else goes through it.
  if (argv[0] === "status" && (argv.length === 1 || (argv.length === 2 && argv[1] === "--json"))) {
    try {
      await printStatus(ctx, defaultLayout(env), argv.length === 2);
    } catch (e) {
      return reportError(e, stderr, redactor, false);
    }
    return exit;
  }
  const { Command, CommanderError, Option } = await import("commander");
  const program = new Command("vault-render")
    .description("Render HashiCorp Vault secrets into files for Docker containers (AppRole, KV, atomic 0644/0755 writes).")
    .version(version, "-V, --version")
    .option("-l, --layout <file>", "layout file (env VAULT_RENDER_LAYOUT)", defaultLayout(env))
    .option("-v, --verbose", "log a one-line summary per run and per change")
    .option("--debug", "debug logging and stack traces on errors")
    .addOption(new Option("--log-format <format>", "log line format").choices(["pretty", "json"]))
    .addHelpText("after", "\nExit codes: 0 ok, 1 some outputs failed (or check found problems), 2 usage or invalid layout,\n3 Vault unavailable or authentication failed (nothing changed), 4 another run held the lock,\n5 local environment failure: agent-only/ or public/ unusable, nothing changed.\nDocs: README.md and docs/ in the project.")
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => stdout.write(s), writeErr: (s) => stderr.write(s) });

  program.hook("preAction", async (_program, action) => {
    if (LOGLESS.has(action.name())) return;
    logMod = await import("./core/support/log.js");
  });

  registerSync(program, ctx);
  registerRotate(program, ctx);
  registerCheck(program, ctx);
  registerStatus(program, ctx);
  registerWatch(program, ctx);
  registerSchema(program, ctx);
  registerPolicy(program, ctx);
  registerInit(program, ctx);
  registerImport(program, ctx);
  registerCompletion(program, ctx);
  registerExport(program, ctx);

  const debug = argv.includes("--debug");
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help / --version exit through here with code 0; usage errors were already printed.
      return e.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
    }
    return reportError(e, stderr, redactor, debug);
  }
  return exit;
}

/** An error that ends the run: one clear line (every line of a layout's issues), redacted; its exit code. */
function reportError(e: unknown, stderr: NodeJS.WritableStream, redactor: Redactor, debug: boolean): number {
  const redact = (text: string): string => redactor.redact(text);
  const lines = oneLine(e).split("\n");
  if (isVrError(e) && e.code === "LAYOUT_INVALID") {
    for (const l of e.message.split("\n")) stderr.write(redact(`vault-render: ${l}`) + "\n");
  } else {
    for (const l of lines) stderr.write(redact(`vault-render: ${l}`) + "\n");
  }
  if (debug && e instanceof Error && e.stack) stderr.write(redact(e.stack) + "\n");
  return isVrError(e) ? e.exit : ExitCode.Failed;
}
