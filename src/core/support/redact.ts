/**
 * The redactor: knows the secret values of this run (token, role_id, secret_id, wrapping token,
 * every fetched value) and replaces them in any text about to be printed. Values should never be
 * logged in the first place; this is the net. Kept apart from the logger so that commands which
 * log nothing do not load pino.
 */
import { StringDecoder } from "node:string_decoder";

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

  /** Redact, then cut to `max` (redacting after a cut would miss a secret the cut split). */
  redactCut(text: string, max: number): string {
    return cutText(this.redact(text), max);
  }

  /**
   * Redact text whose end was already cut off (a capture limit): a secret that straddled that cut
   * left only a prefix, which `redact` cannot recognise, so any tail that is the start of a known
   * secret is dropped too.
   */
  redactCutOff(text: string): string {
    let out = this.redact(text);
    if (this.secrets.size === 0) return out;
    for (const s of this.sorted ?? []) {
      const k = overlap(out, s);
      if (k > 0) out = out.slice(0, out.length - k);
    }
    return out;
  }
}

/** The length of the longest suffix of `text` that is a proper prefix of `secret` (KMP, linear). */
function overlap(text: string, secret: string): number {
  const m = Math.min(secret.length - 1, text.length);
  if (m <= 0) return 0;
  const tail = text.length - m;
  // Prefix function over secret[0..m) + separator + text's last m code units.
  const at = (i: number): number => (i < m ? secret.charCodeAt(i) : i === m ? -1 : text.charCodeAt(tail + i - m - 1));
  const n = 2 * m + 1;
  const pi = new Int32Array(n);
  for (let i = 1; i < n; i++) {
    let k = pi[i - 1] as number;
    const c = at(i);
    while (k > 0 && at(k) !== c) k = pi[k - 1] as number;
    if (at(k) === c) k++;
    pi[i] = k;
  }
  return pi[n - 1] as number;
}

/**
 * Cut `text` to at most `max` UTF-16 code units plus "…", never inside a surrogate pair (so
 * never inside a character). Text within the limit is returned as it is.
 */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = Math.max(0, max);
  const c = text.charCodeAt(end - 1);
  if (end > 0 && c >= 0xd800 && c <= 0xdbff) end--;
  return text.slice(0, end) + "…";
}

/**
 * Collects a child's output up to `maxBytes`, decoding UTF-8 across chunk boundaries (a character
 * split between two reads is never turned into U+FFFD) and never keeping part of a character at
 * the limit. `truncated` tells whether output was dropped.
 */
export class BoundedText {
  private readonly decoder = new StringDecoder("utf8");
  private bytes = 0;
  private full = false;
  text = "";
  truncated = false;

  constructor(private readonly maxBytes: number) {}

  write(chunk: Buffer): void {
    if (this.full) {
      if (chunk.length > 0) this.truncated = true;
      return;
    }
    let part = chunk;
    if (this.bytes + chunk.length > this.maxBytes) {
      part = chunk.subarray(0, this.maxBytes - this.bytes);
      this.full = true;
      this.truncated = true;
    }
    this.bytes += part.length;
    // A partial character at the end stays in the decoder: at the limit it is simply never emitted.
    this.text += this.decoder.write(part);
  }
}
