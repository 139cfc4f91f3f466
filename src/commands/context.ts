/**
 * What every command gets from the entry point: the environment, output streams, logger and
 * clock. Commands parse options and call one core function; they never exit the process.
 */
import type { Clock } from "../core/support/clock.js";
import type { Logger, LogFormat, LogLevel } from "../core/support/log.js";
import type { Redactor } from "../core/support/redact.js";
import type { Env } from "../core/layout/load.js";
import type { WriteFault } from "../core/fs/writer.js";
import { parseDuration } from "../core/support/duration.js";
import { ExitCode, VrError } from "../core/support/errors.js";

export interface GlobalOptions {
  layout: string;
  verbose: boolean;
  debug: boolean;
  logFormat?: LogFormat;
}

export interface CommandContext {
  env: Env;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  isTTY: boolean;
  stdoutIsTTY: boolean;
  clock: Clock;
  redactor: Redactor;
  /** Build the logger once global options are known. */
  logger: (level: LogLevel, format: LogFormat) => Logger;
  /** The command's exit code (the entry point applies it). */
  setExit: (code: number) => void;
  /** Test-only seams (see TestHooks); never set by the production bin. */
  testHooks?: TestHooks;
}

/**
 * Seams only tests set (test/support/cli-with-hooks.js for a child process, runInProcess in
 * test/support for the in-process level); the production bin never does, so none is reachable there.
 */
export interface TestHooks {
  /** Added to the clock's now(), as the double's advanceTime moves Vault's. */
  nowOffsetMs?: number;
  /** A fault at the writer's boundary (fail or kill before a write or rename). */
  writeFault?: WriteFault;
  /** Watch's first retry delay (normally 1 s), so a test can reach a long backoff at once. */
  firstBackoffMs?: number;
}

export function defaultLayout(env: Env): string {
  return env.VAULT_RENDER_LAYOUT || "vault-layout.json";
}

export function levelFor(g: GlobalOptions, quietDefault: LogLevel): LogLevel {
  return g.debug ? "debug" : g.verbose ? "info" : quietDefault;
}

/** Human lines by default; `--log-format json` for log shippers (watch mode defaults to JSON off a TTY). */
export function formatFor(g: GlobalOptions, ctx: CommandContext, offTty: LogFormat = "pretty"): LogFormat {
  return g.logFormat ?? (ctx.isTTY ? "pretty" : offTty);
}

/** Options every Vault-touching command shares. */
export function commonSyncOptions(ctx: CommandContext, g: GlobalOptions) {
  return {
    layoutFile: g.layout,
    env: ctx.env,
    redactor: ctx.redactor,
    clock: ctx.clock,
    print: (line: string) => {
      ctx.stdout.write(ctx.redactor.redact(line) + "\n");
    },
    ...(ctx.testHooks?.writeFault ? { writeFault: ctx.testHooks.writeFault } : {}),
  };
}

/**
 * A duration flag (`--lock-timeout 30s`, `--interval 5m`): one parser and one wording for all,
 * naming the flag; `positive` rejects 0 (an interval of 0 would spin).
 */
export function parseDurationFlag(flag: string, text: string, opts: { positive?: boolean } = {}): number {
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch {
    throw new VrError("USAGE", `${flag}: "${text}" is not a duration (e.g. 30s, 2m)`, { exit: ExitCode.Usage });
  }
  if (opts.positive && !(ms > 0)) throw new VrError("USAGE", `${flag}: "${text}" must be longer than 0 (e.g. 30s, 2m)`, { exit: ExitCode.Usage });
  return ms;
}

export function parseLockTimeout(text: string): number {
  return parseDurationFlag("--lock-timeout", text);
}
