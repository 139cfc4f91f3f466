/**
 * The one place pino is configured. Every line passes through a Redactor that knows the secret
 * values of this run (token, secret_id, wrapping token, every fetched value) before it reaches
 * the output stream: values should never be logged in the first place, and this is the net.
 */
import { Writable } from "node:stream";
import pino from "pino";
import type { Logger } from "pino";
import type { Redactor } from "./redact.js";

export type LogFormat = "json" | "pretty";
export type LogLevel = "error" | "warn" | "info" | "debug" | "trace" | "silent";

const LEVEL_NAMES: Record<number, string> = { 10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal" };

function prettyLine(line: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  // Human lines carry the message only: every message is written to stand alone; the structured
  // fields are for --log-format json.
  const level = LEVEL_NAMES[o.level as number] ?? String(o.level);
  const tag = level === "info" ? "" : `${level}: `;
  return `vault-render: ${tag}${typeof o.msg === "string" ? o.msg : ""}\n`;
}

export interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  out: NodeJS.WritableStream;
  redactor: Redactor;
}

export function createLogger(opts: LoggerOptions): Logger {
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const text = opts.redactor.redact(chunk.toString("utf8"));
      opts.out.write(opts.format === "pretty" ? text.split("\n").filter(Boolean).map(prettyLine).join("") : text);
      cb();
    },
  });
  return pino(
    {
      level: opts.level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      // Belt and braces: field names that could ever carry credentials.
      redact: { paths: ["token", "secret_id", "secretId", "client_token", "*.token", "*.secret_id", "headers", "*.headers"], censor: "[REDACTED]" },
    },
    dest,
  );
}

export type { Logger };

