/**
 * The redactor: knows the secret values of this run (token, role_id, secret_id, wrapping token,
 * every fetched value) and replaces them in any text about to be printed. Values should never be
 * logged in the first place; this is the net. Kept apart from the logger so that commands which
 * log nothing do not load pino.
 */
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
