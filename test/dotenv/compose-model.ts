/**
 * A test model of Docker Compose v2's env-file reader (compose-go `dotenv/parser.go` plus the
 * `template.Substitute` interpolation), written from the rules in shared/dotenv.md §2.1. There is no
 * runnable compose-go on these machines; dotenv.compose-model.test.ts checks this model against the
 * documented expectations. It works on decoded text (invalid UTF-8 is refused before it gets here).
 */

export class ComposeParseError extends Error {
  override name = "ComposeParseError";
}

/** Go `unicode.IsSpace`. */
function goIsSpace(c: string): boolean {
  return /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/u.test(c);
}

/** compose-go's own `isSpace` (no LF, so a value never starts on the next line). */
function parserIsSpace(c: string): boolean {
  return c === "\t" || c === "\v" || c === "\f" || c === "\r" || c === " " || c === "\u0085" || c === "\u00a0";
}

function trimLeft(s: string, pred: (c: string) => boolean): string {
  let i = 0;
  for (const c of s) {
    if (!pred(c)) break;
    i += c.length;
  }
  return s.slice(i);
}

function trimRight(s: string, pred: (c: string) => boolean): string {
  const chars = [...s];
  while (chars.length > 0 && pred(chars[chars.length - 1] ?? "")) chars.pop();
  return chars.join("");
}

type Lookup = (name: string) => string | undefined;

const NAME_RE = /^[_a-z][_a-z0-9]*/i;

/** Index of the `}` that closes a `${` whose body starts at `from`, counting nested braces. */
function closingBrace(s: string, from: number): number {
  let depth = 0;
  for (let i = from; i < s.length; i++) {
    if (s[i] === "{") depth++;
    else if (s[i] === "}") {
      if (depth === 0) return i;
      depth--;
    }
  }
  return -1;
}

/** `template.Substitute`: `$$`, `$NAME`, `${NAME}` and `${NAME:-d}`-style forms; a bad `${` is an error. */
function substitute(s: string, lookup: Lookup): string {
  let out = "";
  let i = 0;
  while (i < s.length) {
    const c = s[i] ?? "";
    if (c !== "$") {
      out += c;
      i++;
      continue;
    }
    const next = s[i + 1];
    if (next === "$") {
      out += "$";
      i += 2;
      continue;
    }
    if (next === "{") {
      const name = NAME_RE.exec(s.slice(i + 2))?.[0];
      if (name === undefined) throw new ComposeParseError("Invalid template");
      let j = i + 2 + name.length;
      const value = lookup(name);
      if (s[j] === "}") {
        out += value ?? "";
        i = j + 1;
        continue;
      }
      const op = /^(:?[-+?])/.exec(s.slice(j))?.[1];
      if (op === undefined) throw new ComposeParseError("Invalid template");
      j += op.length;
      const end = closingBrace(s, j);
      if (end < 0) throw new ComposeParseError("Invalid template");
      const arg = substitute(s.slice(j, end), lookup);
      const set = value !== undefined;
      const nonEmpty = set && value !== "";
      switch (op) {
        case ":-":
          out += nonEmpty ? value : arg;
          break;
        case "-":
          out += set ? value : arg;
          break;
        case ":+":
          out += nonEmpty ? arg : "";
          break;
        case "+":
          out += set ? arg : "";
          break;
        case ":?":
          if (!nonEmpty) throw new ComposeParseError(`required variable ${name} is missing a value: ${arg}`);
          out += value;
          break;
        case "?":
          if (!set) throw new ComposeParseError(`required variable ${name} is missing a value: ${arg}`);
          out += value;
          break;
      }
      i = end + 1;
      continue;
    }
    const name = NAME_RE.exec(s.slice(i + 1))?.[0];
    if (name !== undefined) {
      out += lookup(name) ?? "";
      i += 1 + name.length;
      continue;
    }
    out += "$";
    i++;
  }
  return out;
}

const ESCAPES: Record<string, string> = {
  a: "\x07",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  v: "\v",
  "\\": "\\",
  '"': '"',
  // `\$` is rewritten to `$$`, which interpolation then turns into one literal `$`.
  $: "$$",
};

function expandEscapes(s: string): string {
  return s.replace(/\\(?:[abfnrtv$"\\]|0[0-7]{0,3})/g, (m) => {
    if (m.startsWith("\\0")) return m.length > 2 ? String.fromCharCode(parseInt(m.slice(2), 8)) : m;
    return ESCAPES[m.slice(1)] ?? m;
  });
}

/** Skip whitespace (incl. LF) and whole-line `#` comments; "" at end of file. */
function statementStart(src: string): string {
  for (;;) {
    src = trimLeft(src, goIsSpace);
    if (src === "") return "";
    if (!src.startsWith("#")) return src;
    const nl = src.indexOf("\n");
    if (nl < 0) return "";
    src = src.slice(nl);
  }
}

function locateKey(src: string): { key: string; rest: string; inherited: boolean } {
  const exp = /^export\s+/.exec(src);
  if (exp) src = trimLeft(src.slice("export".length), parserIsSpace);
  let i = 0;
  for (const c of src) {
    if (!parserIsSpace(c)) {
      if (c === "=" || c === ":" || c === "\n") {
        const key = trimRight(src.slice(0, i), goIsSpace);
        return { key, rest: trimLeft(src.slice(i + 1), parserIsSpace), inherited: c === "\n" };
      }
      if (!/^[_.\-[\]\p{L}\p{N}]$/u.test(c)) {
        throw new ComposeParseError(`unexpected character ${JSON.stringify(c)} in variable name`);
      }
    }
    i += c.length;
  }
  // A last line without `=` and without LF: a bare key.
  return { key: trimRight(src, goIsSpace), rest: "", inherited: true };
}

function extractValue(src: string, lookup: Lookup): { value: string; rest: string } {
  const quote = src[0];
  if (quote !== "'" && quote !== '"') {
    const nl = src.indexOf("\n");
    let value = nl < 0 ? src : src.slice(0, nl);
    const rest = nl < 0 ? "" : src.slice(nl + 1);
    const hash = value.indexOf(" #");
    if (hash >= 0) value = value.slice(0, hash);
    return { value: substitute(trimRight(value, goIsSpace), lookup), rest };
  }
  let escaped = false;
  let chars = "";
  for (let i = 1; i < src.length; i++) {
    const c = src[i] ?? "";
    if (c !== quote) {
      if (!escaped && c === "\\") {
        escaped = true;
        continue;
      }
      if (escaped) {
        escaped = false;
        chars += "\\";
      }
      chars += c;
      continue;
    }
    if (escaped) {
      // `\'` inside '…' and `\"` inside "…": the quote is kept, the backslash dropped.
      escaped = false;
      chars += c;
      continue;
    }
    const value = quote === '"' ? substitute(expandEscapes(chars), lookup) : chars;
    return { value, rest: src.slice(i + 1) };
  }
  throw new ComposeParseError("unterminated quoted value");
}

/**
 * Parse an env file like compose-go. `env` is the project environment (looked up before earlier keys
 * of the same file). Throws ComposeParseError where Compose would fail the whole command.
 */
export function parseComposeEnv(input: string | Buffer, env: Record<string, string> = {}): Map<string, string> {
  let src = typeof input === "string" ? input : new TextDecoder("utf-8", { ignoreBOM: true }).decode(input);
  if (src.startsWith("\ufeff")) src = src.slice(1);
  const out = new Map<string, string>();
  const lookup: Lookup = (name) => env[name] ?? out.get(name);
  for (;;) {
    src = statementStart(src);
    if (src === "") return out;
    const { key, rest, inherited } = locateKey(src);
    if (key.includes(" ")) throw new ComposeParseError("key cannot contain a space");
    if (inherited) {
      const v = env[key];
      if (v !== undefined) out.set(key, v);
      src = rest;
      continue;
    }
    const { value, rest: after } = extractValue(rest, lookup);
    out.set(key, value);
    src = after;
  }
}
