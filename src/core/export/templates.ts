/**
 * Go text/template text (VSO transformation templates, ESO target.template engineVersion v2) that
 * reproduces the bytes src/core/render/ writes for an output. Only the template functions both
 * operators ship are used (Go's own `index`, `not`, `or`, and sprig's `get`, `replace`, `contains`,
 * `hasPrefix`, `hasSuffix`, `trimPrefix`, `trimAll`, `b64enc`, `b64dec`, `nospace`, `hasKey`,
 * `fail`). test/support/go-template.ts evaluates these texts; the export tests compare their
 * output with the product's renderers byte for byte.
 *
 * Every value is assumed to be a string (what the vault CLI and the UI write). A non-string KV
 * value is written by vault-render as JSON; the templates hand it to string functions, which fail
 * the operator's sync instead of writing other bytes.
 */
import type { EnvDialect } from "../render/dotenv.js";
import type { TemplatePart } from "../render/template.js";

/** How a template reaches the data of one source. */
export interface Access {
  /** A Go operand (parenthesised when it is a call) holding the value of `key` of `source`. */
  value(source: string, key: string): string;
  /** Loop over every key of `source`, sorted (Go ranges over a map in key order). */
  range(source: string, k: string, v: string): { open: string; key: string; close: string };
  /** Text placed before everything else: the checks that make a missing key fail the sync. */
  guards(refs: ReadonlyArray<readonly [string, string]>): string;
}

/** A Go interpreted string literal of `s` (control characters as \xNN, so the text stays one line). */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (ch === "\\") out += "\\\\";
    else if (ch === '"') out += '\\"';
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return out + '"';
}

/** ` | replace "a" "b"` for each pair, in order. */
function replaces(pairs: ReadonlyArray<readonly [string, string]>): string {
  return pairs.map(([a, b]) => ` | replace ${goQuote(a)} ${goQuote(b)}`).join("");
}

/**
 * JSON.stringify of a string, as a pipeline tail: backslash first (later replacements add
 * backslashes of their own), then the quote, then every control character with the escape
 * JSON.stringify uses (\b \t \n \f \r, else \u00xx). sprig's toRawJson is not used: Go's encoder
 * escapes U+2028 and U+2029, which JSON.stringify writes as they are.
 */
function jsonStringPipe(): string {
  const pairs: Array<[string, string]> = [
    ["\\", "\\\\"],
    ['"', '\\"'],
  ];
  const short: Record<number, string> = { 8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r" };
  for (let c = 0; c < 0x20; c++) pairs.push([String.fromCharCode(c), short[c] ?? `\\u${c.toString(16).padStart(4, "0")}`]);
  return replaces(pairs);
}

/** The characters String.prototype.trim removes (ECMAScript WhiteSpace and LineTerminator). */
const JS_TRIM_SET =
  "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff";

/** The value `v` (a Go operand) encoded as `encodeEnvFile` encodes it for `dialect` (after KEY=). */
function envValue(v: string, dialect: Exclude<EnvDialect, "dotenv">): string {
  switch (dialect) {
    case "verbatim":
      return `{{ ${v} }}`;
    case "portable":
      return `'{{ ${v} }}'`;
    case "sh":
      return `'{{ ${v}${replaces([["'", "'\\''"]])} }}'`;
    case "compose":
      return `"{{ ${v}${replaces([["\\", "\\\\"], ['"', '\\"'], ["$", "$$"], ["\n", "\\n"], ["\r", "\\r"]])} }}"`;
    case "python-dotenv":
      return `"{{ ${v}${replaces([["\\", "\\\\"], ['"', '\\"'], ["\n", "\\n"], ["\r", "\\r"]])} }}"`;
    case "posix":
    case "systemd":
      return `"{{ ${v}${replaces([["\\", "\\\\"], ['"', '\\"'], ["$", "\\$"], ["`", "\\`"]])} }}"`;
  }
}

/** Counter for template variable names, so that each binding in one text is distinct. */
class Names {
  private n = 0;
  next(base: string): string {
    return `$${base}${this.n++}`;
  }
}

/** One `KEY=<value>\n` line; `keyText` is literal text or a `{{ … }}` action. */
function envLine(keyText: string, value: string, dialect: EnvDialect, names: Names): string {
  if (dialect !== "dotenv") return `${keyText}=${envValue(value, dialect)}\n`;
  // npm dotenv: the first quote style the value allows (dotenv.ts npmQuote).
  const v = names.next("v");
  return (
    `{{ ${v} := ${value} }}` +
    `{{ if not (or (contains "\\r" ${v}) (contains "'" ${v})) }}${keyText}='{{ ${v} }}'` +
    `{{ else if not (or (contains "\\r" ${v}) (contains "\`" ${v})) }}${keyText}=\`{{ ${v} }}\`` +
    `{{ else }}${keyText}="{{ ${v}${replaces([["\n", "\\n"], ["\r", "\\r"]])} }}"{{ end }}\n`
  );
}

export interface EntrySpec {
  keys: ReadonlyArray<readonly [name: string, source: string, key: string]>;
  from: ReadonlyArray<{ source: string; prefix: string }>;
}

/** Explicit (source, key) pairs an entry spec reads (for guards). */
function explicitRefs(spec: EntrySpec): Array<readonly [string, string]> {
  return spec.keys.map(([, s, k]) => [s, k] as const);
}

export function envTemplate(spec: EntrySpec, dialect: EnvDialect, access: Access): string {
  const names = new Names();
  let out = access.guards(explicitRefs(spec));
  for (const [name, s, k] of spec.keys) out += envLine(name, access.value(s, k), dialect, names);
  for (const f of spec.from) {
    const k = names.next("k");
    const v = names.next("v");
    const r = access.range(f.source, k, v);
    out += r.open + envLine(`${f.prefix}{{ ${r.key} }}`, v, dialect, names) + r.close;
  }
  return out;
}

/** Text that may hold a brace: written as a literal action, so that "{" never touches a "{{". */
function safeText(s: string): string {
  return /[{}]/.test(s) ? `{{ ${goQuote(s)} }}` : s;
}

/** JSON.stringify(obj, null, 2) + "\n" of the entries (string values). */
export function jsonTemplate(spec: EntrySpec, access: Access): string {
  const names = new Names();
  const pipe = jsonStringPipe();
  const staticFirst = spec.keys.length > 0;
  const first = names.next("first");
  let out = access.guards(explicitRefs(spec));
  if (!staticFirst && spec.from.length > 0) out += `{{ ${first} := true }}`;
  // "{" right before a "{{" would read as "{{{": then it is a literal action.
  out += staticFirst || spec.from.length === 0 ? "{" : '{{ "{" }}';
  spec.keys.forEach(([name, s, k], i) => {
    out += `${i > 0 ? "," : ""}\n  ${safeText(JSON.stringify(name))}: "{{ ${access.value(s, k)}${pipe} }}"`;
  });
  for (const f of spec.from) {
    const k = names.next("k");
    const v = names.next("v");
    const r = access.range(f.source, k, v);
    const comma = staticFirst ? "," : `{{ if not ${first} }},{{ end }}{{ ${first} = false }}`;
    const prefix = f.prefix === "" ? "" : `{{ ${goQuote(JSON.stringify(f.prefix).slice(1, -1))} }}`;
    out += `${r.open}${comma}\n  "${prefix}{{ ${r.key}${pipe} }}": "{{ ${v}${pipe} }}"${r.close}`;
  }
  if (staticFirst) out += "\n}\n";
  else if (spec.from.length > 0) out += `{{ if not ${first} }}\n{{ end }}}\n`;
  else out += "}\n";
  return out;
}

/** A raw output: the value as it is, or base64-decoded; a final newline when asked and missing. */
export function rawTemplate(source: string, key: string, decode: boolean, newline: boolean, access: Access): string {
  const value = access.value(source, key);
  const expr = decode ? `${value} | nospace | b64dec` : value;
  const guard = access.guards([[source, key]]);
  if (!newline) return `${guard}{{ ${expr} }}`;
  return `${guard}{{ $v := ${expr} }}{{ $v }}{{ if not (hasSuffix "\\n" $v) }}\n{{ end }}`;
}

/** One helper applied to a Go pipeline `expr`. */
function applyHelper(expr: string, helper: string): string {
  switch (helper) {
    case "json":
      return `printf "\\"%s\\"" (${expr}${jsonStringPipe()})`;
    case "base64":
      return `${expr} | b64enc`;
    case "base64decode":
      return `${expr} | b64dec`;
    default:
      return `${expr} | trimAll ${goQuote(JS_TRIM_SET)}`;
  }
}

/** Parts of a vault-render template: text stays text, references become values through their helpers. */
export function templateTemplate(parts: ReadonlyArray<TemplatePart>, access: Access): string {
  const refs: Array<readonly [string, string]> = [];
  let body = "";
  for (const p of parts) {
    if ("text" in p) {
      body += p.text;
      continue;
    }
    let operand: string;
    if ("literal" in p) operand = goQuote(p.literal);
    else {
      const i = p.ref.indexOf(".");
      const [s, k] = [p.ref.slice(0, i), p.ref.slice(i + 1)];
      refs.push([s, k]);
      operand = access.value(s, k);
    }
    const last = p.filters[p.filters.length - 1];
    // A final json helper: the quotes are template text around the escaped value (easier to read).
    if (last === "json") body += `"{{ ${p.filters.slice(0, -1).reduce(applyHelper, operand)}${jsonStringPipe()} }}"`;
    else body += `{{ ${p.filters.reduce(applyHelper, operand)} }}`;
  }
  return access.guards(refs) + body;
}

/** PEM as pemBlock writes it: the text, and a newline when it has none at its end. */
function pemBlockText(operand: string, names: Names): string {
  const v = names.next("p");
  return `{{ ${v} := ${operand} }}{{ ${v} }}{{ if not (hasSuffix "\\n" ${v}) }}\n{{ end }}`;
}

/** VSO's VaultPKISecret data: certificate, private_key, issuing_ca, ca_chain (a list). */
export function pkiTemplates(part: "cert" | "key" | "ca" | "fullchain", access: Pick<Access, "value">, chainAsList: boolean): string {
  const names = new Names();
  const leaf = (): string => pemBlockText(access.value("", "certificate"), names);
  const chain = (): string => {
    const issuing = pemBlockText(access.value("", "issuing_ca"), names);
    if (!chainAsList) return issuing;
    const c = names.next("chain");
    const e = names.next("c");
    return `{{ ${c} := ${access.value("", "ca_chain")} }}{{ if ${c} }}{{ range ${e} := ${c} }}${pemBlockText(e, names)}{{ end }}{{ else }}${issuing}{{ end }}`;
  };
  switch (part) {
    case "cert":
      return leaf();
    case "key":
      return pemBlockText(access.value("", "private_key"), names);
    case "ca":
      return chain();
    case "fullchain":
      return leaf() + chain();
  }
}
