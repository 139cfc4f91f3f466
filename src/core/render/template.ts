/**
 * A deliberately small template language: text with `{{ source.key }}` references and a pipe of
 * helpers (`json`, `base64`, `base64decode`, `trim`). `{{ "literal" }}` writes a literal (for a
 * literal "{{"). No expressions, no code execution; a missing key is an error.
 */
import { VrError } from "../support/errors.js";
import { cutText } from "../support/redact.js";

export type TemplatePart = { text: string } | { ref: string; filters: Filter[]; line: number; col: number } | { literal: string; filters: Filter[] };
type Filter = "json" | "base64" | "base64decode" | "trim";
const FILTERS: ReadonlySet<string> = new Set(["json", "base64", "base64decode", "trim"]);

/** Work done by one parse: characters the line/column tracker walked over (linear in the text). */
export interface ParseStats {
  scanned: number;
}

/**
 * Line and column of increasing offsets, walking each character once (a fresh count from the start
 * for every tag made parsing quadratic in the number of tags).
 */
class Cursor {
  private at = 0;
  private line = 1;
  private lineStart = 0;
  constructor(
    private readonly src: string,
    private readonly stats?: ParseStats,
  ) {}

  position(index: number): { line: number; col: number } {
    const src = this.src;
    for (let k = this.at; k < index; k++) {
      if (src.charCodeAt(k) === 10) {
        this.line++;
        this.lineStart = k + 1;
      }
    }
    if (this.stats && index > this.at) this.stats.scanned += index - this.at;
    this.at = Math.max(this.at, index);
    return { line: this.line, col: index - this.lineStart + 1 };
  }
}

export function parseTemplate(src: string, where: string, stats?: ParseStats): TemplatePart[] {
  const parts: TemplatePart[] = [];
  const cursor = new Cursor(src, stats);
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf("{{", i);
    if (open < 0) {
      parts.push({ text: src.slice(i) });
      break;
    }
    if (open > i) parts.push({ text: src.slice(i, open) });
    const close = src.indexOf("}}", open + 2);
    const { line, col } = cursor.position(open);
    if (close < 0) throw new VrError("TEMPLATE", `${where}:${line}:${col}: "{{" is never closed by "}}"`);
    if (stats) stats.scanned += close + 2 - open;
    const inner = src.slice(open + 2, close).trim();
    const [head = "", ...rest] = inner.split("|").map((s) => s.trim());
    const filters: Filter[] = [];
    for (const f of rest) {
      if (!FILTERS.has(f)) throw new VrError("TEMPLATE", `${where}:${line}:${col}: unknown helper "${cutText(f, 40)}" (known: json, base64, base64decode, trim)`);
      filters.push(f as Filter);
    }
    const lit = /^"((?:[^"\\]|\\.)*)"$/.exec(head);
    if (lit) {
      parts.push({ literal: JSON.parse(`"${lit[1]}"`) as string, filters });
    } else if (/^[A-Za-z0-9_-]{1,64}\.[^\s|{}]+$/.test(head)) {
      parts.push({ ref: head, filters, line, col });
    } else {
      throw new VrError("TEMPLATE", `${where}:${line}:${col}: expected {{ source.key }} or {{ "literal" }}, found {{ ${cutText(head, 40)} }}`);
    }
    i = close + 2;
  }
  return parts;
}

export function templateRefs(parts: TemplatePart[]): string[] {
  return parts.flatMap((p) => ("ref" in p ? [p.ref] : []));
}

function applyFilters(value: string, filters: Filter[], where: string): string {
  let v = value;
  for (const f of filters) {
    if (f === "json") v = JSON.stringify(v);
    else if (f === "base64") v = Buffer.from(v, "utf8").toString("base64");
    else if (f === "trim") v = v.trim();
    else {
      if (!/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(v)) throw new VrError("TEMPLATE", `${where}: base64decode: the value is not base64`);
      v = Buffer.from(v, "base64").toString("utf8");
    }
  }
  return v;
}

/**
 * `lookup` gets the reference and where it stands (`<where>:<line>:<column>`), so that a missing
 * key names its place in the template.
 */
export function renderTemplate(parts: TemplatePart[], lookup: (ref: string, at: string) => string, where: string): string {
  let out = "";
  for (const p of parts) {
    if ("text" in p) out += p.text;
    else if ("literal" in p) out += applyFilters(p.literal, p.filters, where);
    else {
      const at = `${where}:${p.line}:${p.col}`;
      out += applyFilters(lookup(p.ref, at), p.filters, at);
    }
  }
  return out;
}
