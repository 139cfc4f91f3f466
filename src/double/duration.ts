/**
 * Vault's duration format, as the double reads and writes it on the wire.
 *
 * The double keeps its own parser on purpose and does not share the product's duration code
 * (src/core/support/duration.ts): the double must not share product code, so a bug in the
 * product's parser cannot be mirrored by the server it is tested against.
 */

/** Go's time.Duration.String() for whole seconds. */
export function goDuration(totalSeconds: number): string {
  let s = Math.trunc(totalSeconds);
  if (s === 0) return "0s";
  const neg = s < 0;
  s = Math.abs(s);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const body = h > 0 ? `${h}h${m}m${sec}s` : m > 0 ? `${m}m${sec}s` : `${sec}s`;
  return neg ? `-${body}` : body;
}

const GO_UNITS: Record<string, number> = { ns: 1e-9, us: 1e-6, "µs": 1e-6, "μs": 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };

/** hashicorp/go-secure-stdlib parseutil.ParseDurationSecond: bare integer = seconds, else a Go duration. */
export function parseDurationSecond(v: unknown): number {
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new Error(`time: invalid duration "${String(v)}"`);
    return Math.trunc(v);
  }
  if (typeof v !== "string") throw new Error(`could not parse duration from input`);
  const s = v.trim();
  if (s === "") return 0;
  if (/^[+-]?\d+$/.test(s)) return parseInt(s, 10);
  const m = /^([+-]?)((?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/.exec(s);
  if (!m) throw new Error(`time: invalid duration ${JSON.stringify(s)}`);
  let total = 0;
  for (const part of (m[2] as string).matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
    total += Number(part[1]) * (GO_UNITS[part[2] as string] as number);
  }
  return Math.trunc(m[1] === "-" ? -total : total);
}

/**
 * A renewal's `increment` field (token renew-self and sys/leases/renew): seconds, 0 when absent or
 * empty; a value Vault cannot decode is its 400 text, returned as `{ error }`.
 */
export function parseIncrement(v: unknown): { seconds: number } | { error: string } {
  if (v === undefined || v === null || v === "") return { seconds: 0 };
  try {
    return { seconds: parseDurationSecond(v) };
  } catch (e) {
    return { error: `error converting input for field "increment": ${(e as Error).message}` };
  }
}
