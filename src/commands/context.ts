/**
 * What every command gets from the entry point: the environment, output streams, logger and
 * clock. Commands parse options and call one core function; they never exit the process.
 */
import type { Clock } from "../core/support/clock.js";
import type { Logger, LogFormat, LogLevel } from "../core/support/log.js";
import type { Redactor } from "../core/support/redact.js";
import type { Env } from "../core/layout/load.js";
import type { WriteFault } from "../core/fs/writer.js";
import { parseDurationFlag } from "../core/support/duration.js";
import type { globalOptions } from "./options.js";
import type { output } from "../core/support/zod.js";

/** The global options, as every command's schema (./options.ts) gives them. */
export type GlobalOptions = output<typeof globalOptions>;

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
    writeFault: testWriteFault(ctx.env.VAULT_RENDER_TEST_FAULT),
  };
}

export function parseLockTimeout(text: string): number {
  return parseDurationFlag("--lock-timeout", text);
}

/**
 * A fault-injection seam for the reliability tests, at the writer's boundary:
 * VAULT_RENDER_TEST_FAULT="kill:<path part>" SIGKILLs this process just before writing a file
 * whose path contains <path part>; "enospc:<path part>" fails that write with ENOSPC;
 * "rename:<path part>" fails the rename of that file over its target with EIO.
 */
function testWriteFault(spec: string | undefined): WriteFault | undefined {
  const m = spec ? /^(kill|enospc|rename):(.+)$/.exec(spec) : null;
  if (!m) return undefined;
  const [, kind, part] = m as unknown as [string, string, string];
  return (file, _offset, op) => {
    if (!file.includes(part)) return;
    if ((kind === "rename") !== (op === "rename")) return;
    if (kind === "rename") throw Object.assign(new Error("injected fault: rename failed"), { code: "EIO" });
    if (kind === "kill") process.kill(process.pid, "SIGKILL");
    throw Object.assign(new Error("injected fault: no space left on device"), { code: "ENOSPC" });
  };
}
