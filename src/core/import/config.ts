/**
 * Reading a Vault Agent or consul-template config (HCL through hcl2json, or JSON) into plain
 * records, and finding the line of a stanza or attribute. hcl2json gives no positions, so lines
 * are found by scanning the source text: the n-th `template {` (HCL) or the n-th `"destination"`
 * key (JSON) anchors stanza n, and an attribute's line is its first `name =` / `"name":` inside
 * that stanza's stretch of text (for JSON, the occurrence nearest the anchor).
 */
import { parseHcl } from "./hcl.js";

export type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** A block as hcl2json (array of objects) or HCL JSON (object or array) writes it → its bodies. */
export function blocks(v: unknown): Obj[] {
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) return v.flatMap((x) => blocks(x));
  return isObj(v) ? [v] : [];
}

/** A labelled block (`method "approle" {}`) or an unlabelled one with `type` → [label, body]. */
export function labelled(v: unknown, typeKey = "type"): { label: string | undefined; body: Obj }[] {
  const out: { label: string | undefined; body: Obj }[] = [];
  const items = Array.isArray(v) ? v : v === undefined ? [] : [v];
  for (const it of items) {
    if (!isObj(it)) continue;
    const keys = Object.keys(it);
    const looksUnlabelled = typeKey in it || keys.length === 0 || keys.some((k) => k === "config" || k === "mount_path" || k === "namespace" || k === "wrap_ttl");
    if (looksUnlabelled) out.push({ label: typeof it[typeKey] === "string" ? it[typeKey] : undefined, body: it });
    else for (const k of keys) for (const b of blocks(it[k])) out.push({ label: k, body: b });
  }
  return out;
}

export const str = (v: unknown): string | undefined => (typeof v === "string" ? v : typeof v === "number" || typeof v === "boolean" ? String(v) : undefined);

export function bool(v: unknown): boolean | undefined {
  if (typeof v === "boolean") return v;
  if (v === "true") return true;
  if (v === "false") return false;
  return undefined;
}

export async function parseConfig(file: string, text: string): Promise<{ json: boolean; doc: Obj }> {
  const json = text.trimStart().startsWith("{");
  if (json) {
    const doc = JSON.parse(text) as unknown;
    if (!isObj(doc)) throw new Error("the JSON config is not an object");
    return { json, doc };
  }
  return { json, doc: await parseHcl(file, text) };
}

export class Lines {
  private readonly starts: number[] = [0];
  constructor(
    private readonly text: string,
    private readonly json: boolean,
  ) {
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) this.starts.push(i + 1);
  }

  lineAt(offset: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.starts[mid] as number) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  }

  private all(re: RegExp): number[] {
    const out: number[] = [];
    for (const m of this.text.matchAll(re)) out.push((m.index ?? 0) + (m[0].length - m[0].trimStart().length));
    return out;
  }

  private blockRe(name: string): RegExp {
    return this.json ? new RegExp(`"${name}"\\s*:`, "g") : new RegExp(`^[ \\t]*${name}\\b[^=\\n]*\\{`, "gm");
  }

  private attrRe(name: string): RegExp {
    return this.json ? new RegExp(`"${name}"\\s*:`, "g") : new RegExp(`(^|[\\s{])${name}\\s*=`, "gm");
  }

  /** Offset of the n-th block `name` (0-based), or -1. */
  block(name: string, n = 0): number {
    return this.all(this.blockRe(name))[n] ?? -1;
  }

  /** Line of the n-th block `name`, or 1. */
  blockLine(name: string, n = 0): number {
    const o = this.block(name, n);
    return o < 0 ? 1 : this.lineAt(o);
  }

  /** Anchor of template stanza n. */
  private templateAnchor(n: number): { at: number; from: number; to: number } {
    if (this.json) {
      const anchors = this.all(/"destination"\s*:/g);
      const at = anchors[n] ?? -1;
      return { at, from: n > 0 ? (anchors[n - 1] ?? 0) + 1 : 0, to: anchors[n + 1] ?? this.text.length };
    }
    const anchors = this.all(/^[ \t]*template[ \t]*\{/gm);
    const at = anchors[n] ?? -1;
    return { at, from: at, to: anchors[n + 1] ?? this.text.length };
  }

  templateLine(n: number): number {
    const a = this.templateAnchor(n);
    return a.at < 0 ? 1 : this.lineAt(a.at);
  }

  /** Line of attribute `name` inside template stanza n (the stanza's own line when not found). */
  templateAttrLine(n: number, name: string): number {
    const a = this.templateAnchor(n);
    if (a.at < 0) return 1;
    const hits = this.all(this.attrRe(name)).filter((o) => o >= a.from && o < a.to);
    if (hits.length === 0) return this.lineAt(a.at);
    const best = hits.reduce((x, y) => (Math.abs(y - a.at) < Math.abs(x - a.at) ? y : x));
    return this.lineAt(best);
  }

  /** Line of the first attribute or block `name` after block `after` (or anywhere), or the block's line. */
  attrLine(name: string, after?: string): number {
    const from = after === undefined ? 0 : Math.max(0, this.block(after));
    const hit = this.all(this.attrRe(name)).find((o) => o >= from) ?? this.all(this.blockRe(name)).find((o) => o >= from);
    return hit === undefined ? (after === undefined ? 1 : this.blockLine(after)) : this.lineAt(hit);
  }

  /** Whether the text after attribute `name` in stanza n starts with a heredoc (<<). */
  templateAttrIsHeredoc(n: number, name: string): boolean {
    const line = this.templateAttrLine(n, name);
    const start = this.starts[line - 1] ?? 0;
    const end = this.starts[line] ?? this.text.length;
    return /=\s*<<-?\s*[A-Za-z_]/.test(this.text.slice(start, end));
  }
}
