/** Durations as operators write them: "500ms", "30s", "5m", "1h30m", "2d", or bare seconds "90". */
import { ExitCode, VrError } from "./errors.js";

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(text: string): number {
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (const m of text.matchAll(re)) {
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
    consumed += m[0].length;
  }
  if (consumed !== text.length || text.length === 0) throw new Error(`invalid duration "${text}"`);
  return Math.round(total);
}

export interface DurationFlagOptions {
  /** Refuse 0 (an interval of 0 would spin). */
  positive?: boolean;
  /** The examples the message gives; default "30s, 2m". */
  example?: string;
}

/**
 * A duration flag (`--lock-timeout 30s`, `--min-validity 7d`): one parser and one wording for all,
 * naming the flag; a usage error (exit 2) otherwise.
 */
export function parseDurationFlag(flag: string, text: string, opts: DurationFlagOptions = {}): number {
  const example = opts.example ?? "30s, 2m";
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch {
    throw new VrError("USAGE", `${flag}: "${text}" is not a duration (e.g. ${example})`, { exit: ExitCode.Usage });
  }
  if (opts.positive && !(ms > 0)) throw new VrError("USAGE", `${flag}: "${text}" must be longer than 0 (e.g. ${example})`, { exit: ExitCode.Usage });
  return ms;
}

export function formatDuration(ms: number): string {
  // Sub-second durations (a --lock-timeout of 200ms) would otherwise read "0s".
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}
