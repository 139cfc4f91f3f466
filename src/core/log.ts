/**
 * The one place pino is configured. Every line passes through a Redactor that knows the secret
 * values of this run (token, secret_id, wrapping token, every fetched value) before it reaches
 * the output stream: values should never be logged in the first place, and this is the net.
 */
import { Writable } from "node:stream";
import pino from "pino";
import type { Logger } from "pino";

export type LogFormat = "json" | "pretty";
export type LogLevel = "error" | "warn" | "info" | "debug" | "trace" | "silent";

export class Redactor {
  private readonly secrets = new Set<string>();
  private sorted: string[] | null = null;
  private publicWords = new Set<string>();

  /**
   * Text that is public anyway (the layout file: paths, key names, mounts). A "secret" that is one
   * of its words (a host name "postgres", a user "nextcloud") is not redacted: it would only mangle
   * the file names and paths in every line, and hides nothing the layout does not already show.
   */
  setPublicText(text: string): void {
    this.publicWords = new Set(text.split(/[\s"'/,:{}[\]=()|]+/).filter((w) => w.length >= 4));
    for (const s of this.secrets) if (this.publicWords.has(s)) this.secrets.delete(s);
    this.sorted = null;
  }

  /** Remember a secret value. Very short values are not redacted (they would mangle every line). */
  add(value: unknown): void {
    if (typeof value === "string") {
      if (value.length >= 4 && !this.publicWords.has(value)) {
        this.secrets.add(value);
        // The JSON-escaped form is what appears inside a JSON log line.
        const j = JSON.stringify(value).slice(1, -1);
        if (j !== value) this.secrets.add(j);
        this.sorted = null;
      }
    } else if (typeof value === "number" || typeof value === "boolean") {
      // not secret enough to redact without damage
    } else if (value !== null && typeof value === "object") {
      for (const v of Object.values(value as Record<string, unknown>)) this.add(v);
    }
  }

  redact(text: string): string {
    if (this.secrets.size === 0) return text;
    // Built lazily: a silent cron run never logs, so it never pays for this.
    this.sorted ??= [...this.secrets].sort((a, b) => b.length - a.length);
    let out = text;
    for (const s of this.sorted) if (out.includes(s)) out = out.split(s).join("[REDACTED]");
    return out;
  }
}

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
  return `vault-render: ${tag}${String(o.msg ?? "")}\n`;
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
