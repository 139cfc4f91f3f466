/**
 * What every command gets from the entry point: the environment, output streams, logger and
 * clock. Commands parse options and call one core function; they never exit the process.
 */
import type { Clock } from "../core/clock.js";
import type { Logger, LogFormat, LogLevel, Redactor } from "../core/log.js";
import type { Env } from "../core/layout/load.js";

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
  clock: Clock;
  redactor: Redactor;
  /** Build the logger once global options are known. */
  logger: (level: LogLevel, format: LogFormat) => Logger;
  /** The command's exit code (the entry point applies it). */
  setExit: (code: number) => void;
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
