/**
 * `.env` encoders. One function per dialect turns a secret into `KEY=<encoded>`; before that, every
 * value is checked against the rules of the consumers the dialect targets and refused, with a message
 * that names the key, the character class and its position but never the value.
 *
 * The rules come from shared/dotenv.md (§0, §2, §4): `portable` is `KEY='VALUE'`, which compose-go,
 * npm dotenv (classic and fast), python-dotenv, dash/bash and systemd all read byte-exactly as long as
 * the value avoids a short list of characters; the other dialects each serve one consumer family.
 */

import { VrError } from "../support/errors.js";

export type DotenvDialect = "portable" | "compose" | "dotenv" | "python-dotenv" | "posix" | "sh" | "systemd";
/**
 * Every env dialect: the quoting dialects above, and "verbatim" (`KEY=value` unquoted, what a Vault
 * Agent / consul-template range template writes; for imported layouts), which no consumer-specific
 * quoting applies to: it refuses only what would break the line structure (LF, CR, NUL).
 */
export type EnvDialect = DotenvDialect | "verbatim";

export const DOTENV_DIALECTS: readonly DotenvDialect[] = Object.freeze([
  "portable",
  "compose",
  "dotenv",
  "python-dotenv",
  "posix",
  "sh",
  "systemd",
] as const);

export interface EnvEntry {
  key: string;
  /** A Buffer holds the raw bytes from Vault and may be invalid UTF-8. */
  value: string | Buffer;
}

export interface EnvContext {
  /** The output file, for messages. */
  file: string;
}

export type ProblemReason =
  | "'"
  | "\\\\"
  | "trailing \\"
  | "${…}"
  | "CR"
  | "LF"
  | "NUL"
  | "U+FEFF"
  | "noncharacter"
  | "not well-formed"
  | "not UTF-8"
  | "too long"
  | "no quote style";

export interface ValueProblem {
  reason: ProblemReason;
  /** 1-based position in characters (Unicode code points), or null when the whole value is the problem. */
  position: number | null;
  /** Which consumer breaks, and how. Never contains the value. */
  consumers: string;
}

/** Linux MAX_ARG_STRLEN: one `KEY=VALUE` environment string, terminating NUL included. */
export const MAX_ENV_STRING_BYTES = 131072;

const KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Assigning these is an error in bash, which sources the file with `set -a; .`. */
const BASH_READONLY = new Set(["BASHOPTS", "BASH_VERSINFO", "EUID", "PPID", "SHELLOPTS", "UID"]);
const SH_READ: ReadonlySet<EnvDialect> = new Set<EnvDialect>(["portable", "posix", "sh", "systemd"]);
/** python-dotenv's interpolation pattern; it is applied whatever the quoting and has no escape. */
const PY_INTERPOLATION_RE = /\$\{[^}:]*(?::-[^}]*)?\}/;

export function checkEnvKey(key: string, dialect: EnvDialect): string | null {
  if (!KEY_RE.test(key)) return "the key does not match ^[A-Za-z_][A-Za-z0-9_]*$";
  if (SH_READ.has(dialect) && BASH_READONLY.has(key)) {
    return "the key is a bash read-only variable, and assigning it makes bash fail while sourcing the file";
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Character-level checks

/** Byte offset of the first invalid UTF-8 sequence in `buf`, or -1 (surrogates and overlongs are invalid). */
function firstInvalidUtf8(buf: Uint8Array): number {
  let i = 0;
  while (i < buf.length) {
    const b = buf[i] ?? 0;
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b < 0x80) {
      i += 1;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= need; k++) {
      const c = buf[i + k];
      if (c === undefined || c < (k === 1 ? lo : 0x80) || c > (k === 1 ? hi : 0xbf)) return i;
    }
    i += need + 1;
  }
  return -1;
}

/** 1-based code-point position of UTF-16 index `index` in `s` (a lone surrogate counts as one character). */
function charPosition(s: string, index: number): number {
  let n = 0;
  for (let i = 0; i < index; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (i + 1 < index && d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n + 1;
}

/** UTF-16 index of the first lone surrogate, or -1. */
function firstLoneSurrogate(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
      else return i;
    } else if (c >= 0xdc00 && c <= 0xdfff) return i;
  }
  return -1;
}

/** UTF-16 index of the first Unicode noncharacter (U+FDD0–U+FDEF, U+xxFFFE, U+xxFFFF), or -1. */
function firstNoncharacter(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const cp = s.codePointAt(i) ?? 0;
    if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) return i;
    if (cp > 0xffff) i++;
  }
  return -1;
}

/** npm dotenv decodes a literal backslash-n / backslash-r inside "…", so such values cannot use "…". */
const DQ_DECODED_BY_NPM_RE = /\\[nr]/;

// ---------------------------------------------------------------------------------------------
// Consumers that break, per reason and dialect (for messages)

function consumersFor(reason: ProblemReason, dialect: EnvDialect): string {
  switch (reason) {
    case "'":
      return "sh and systemd cannot escape it inside '…', and Compose, python-dotenv and npm dotenv disagree on \\'";
    case "\\\\":
      return "python-dotenv reads \\\\ as a single backslash even inside '…'";
    case "trailing \\":
      if (dialect === "python-dotenv") {
        return "python-dotenv reads the final \\\\\" as an escaped quote and runs the value into the following lines";
      }
      if (dialect === "dotenv") {
        return "npm dotenv reads the final backslash as escaping the closing quote and swallows the following lines";
      }
      return "Compose, python-dotenv and npm dotenv (fast parser) read \\' as an escaped quote and run the value into the following lines";
    case "${…}":
      return "python-dotenv expands ${…} whatever the quoting and has no escape for it";
    case "CR":
      if (dialect === "verbatim") return "the file is written without quoting, as Vault Agent writes KEY=value, and a reader takes a CR as part of the line ending";
      return "npm dotenv and python-dotenv turn CR into LF when they read the file";
    case "LF":
      return "the file is written without quoting, as Vault Agent writes KEY=value, so a line break would start a new line that a reader takes as another assignment";
    case "NUL":
      return "no process environment can hold NUL (execve takes C strings); sh drops it and systemd stops reading the file there";
    case "U+FEFF":
      return "systemd.exec(5) does not allow U+FEFF in environment files";
    case "noncharacter":
      return "systemd rejects the whole file (EINVAL) and the unit fails to start";
    case "not well-formed":
      return "a lone surrogate has no UTF-8 encoding, so no consumer can read it";
    case "not UTF-8":
      switch (dialect) {
        case "compose":
          return "Compose passes values to the Engine as JSON, which turns invalid bytes into U+FFFD";
        case "dotenv":
          return "npm dotenv turns invalid bytes into U+FFFD";
        case "python-dotenv":
          return "python-dotenv fails to load the whole file (UnicodeDecodeError)";
        case "posix":
        case "systemd":
          return "systemd rejects the whole file (EINVAL)";
        case "sh":
          return "the .env file is written as UTF-8 text";
        case "portable":
          return "npm dotenv turns invalid bytes into U+FFFD, python-dotenv fails to load the file and systemd rejects the whole file";
      }
      return "the .env file is written as UTF-8 text";
    case "too long":
      return `Linux limits one KEY=VALUE environment string to ${MAX_ENV_STRING_BYTES} bytes including its final NUL (execve fails with E2BIG)`;
    case "no quote style":
      return "npm dotenv has no escapes: '…' and `…` cannot hold the quote itself or a CR, and \"…\" cannot hold \" or a literal \\n or \\r";
  }
}

/** The clause after "…(dialect "x"): ". */
function describe(reason: ProblemReason): string {
  if (reason === "too long") {
    return `the value is too long (KEY=VALUE plus its NUL exceeds ${MAX_ENV_STRING_BYTES} bytes)`;
  }
  return `the value contains ${describeClass(reason)}`;
}

function describeClass(reason: Exclude<ProblemReason, "too long">): string {
  switch (reason) {
    case "'":
      return "a single quote (')";
    case "\\\\":
      return "two consecutive backslashes (\\\\)";
    case "trailing \\":
      return "a trailing backslash (\\)";
    case "${…}":
      return "a ${…} reference";
    case "CR":
      return "a carriage return (CR, U+000D)";
    case "LF":
      return "a line feed (LF, U+000A)";
    case "NUL":
      return "a NUL character (U+0000)";
    case "U+FEFF":
      return "a byte-order mark (U+FEFF)";
    case "noncharacter":
      return "a Unicode noncharacter (U+FDD0–U+FDEF or U+xxFFFE/U+xxFFFF)";
    case "not well-formed":
      return "a lone UTF-16 surrogate (not well-formed Unicode)";
    case "not UTF-8":
      return "bytes that are not valid UTF-8";
    case "no quote style":
      return "a mix of quotes and line breaks that no npm dotenv quote style can hold";
  }
}

// ---------------------------------------------------------------------------------------------
// Checking

interface Decoded {
  text: string;
  /** 1-based character position of the first invalid UTF-8 byte, or null. */
  invalidUtf8At: number | null;
  bytes: number;
}

function decodeValue(value: string | Buffer): Decoded {
  if (typeof value === "string") return { text: value, invalidUtf8At: null, bytes: Buffer.byteLength(value, "utf8") };
  // ignoreBOM keeps a leading EF BB BF as U+FEFF instead of silently dropping it.
  const bad = firstInvalidUtf8(value);
  const text = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true }).decode(value);
  let invalidUtf8At: number | null = null;
  if (bad >= 0) {
    const prefix = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(value.subarray(0, bad));
    invalidUtf8At = charPosition(prefix, prefix.length);
  }
  return { text, invalidUtf8At, bytes: value.length };
}

/** The chosen npm dotenv quote, or null when none fits. */
function npmQuote(v: string): "'" | "`" | '"' | null {
  const hasCR = v.includes("\r");
  if (!hasCR && !v.includes("'")) return "'";
  if (!hasCR && !v.includes("`")) return "`";
  if (!v.includes('"') && !DQ_DECODED_BY_NPM_RE.test(v)) return '"';
  return null;
}

function problemsOf(key: string, d: Decoded, dialect: EnvDialect): ValueProblem[] {
  const v = d.text;
  const found: { reason: ProblemReason; index: number | null; position?: number }[] = [];
  const at = (reason: ProblemReason, index: number): void => {
    if (index >= 0) found.push({ reason, index });
  };

  // Every dialect: the value must become valid UTF-8 text and fit into one environment string.
  if (d.invalidUtf8At !== null) found.push({ reason: "not UTF-8", index: null, position: d.invalidUtf8At });
  at("not well-formed", firstLoneSurrogate(v));
  at("NUL", v.indexOf("\0"));
  if (Buffer.byteLength(key, "utf8") + 1 + d.bytes + 1 > MAX_ENV_STRING_BYTES) {
    found.push({ reason: "too long", index: null });
  }

  const trailingBackslash = v.endsWith("\\") ? v.length - 1 : -1;
  switch (dialect) {
    case "portable":
      at("'", v.indexOf("'"));
      at("CR", v.indexOf("\r"));
      at("\\\\", v.indexOf("\\\\"));
      at("trailing \\", trailingBackslash);
      at("${…}", v.search(PY_INTERPOLATION_RE));
      at("U+FEFF", v.indexOf("\ufeff"));
      at("noncharacter", firstNoncharacter(v));
      break;
    case "compose":
    case "sh":
      break;
    case "dotenv":
      at("trailing \\", trailingBackslash);
      if (npmQuote(v) === null) found.push({ reason: "no quote style", index: null });
      break;
    case "python-dotenv":
      at("trailing \\", trailingBackslash);
      at("${…}", v.search(PY_INTERPOLATION_RE));
      break;
    case "posix":
    case "systemd":
      at("U+FEFF", v.indexOf("\ufeff"));
      at("noncharacter", firstNoncharacter(v));
      break;
    case "verbatim":
      at("LF", v.indexOf("\n"));
      at("CR", v.indexOf("\r"));
      break;
  }

  return found
    .map((f) => ({
      reason: f.reason,
      position: f.position ?? (f.index === null ? null : charPosition(v, f.index)),
      consumers: consumersFor(f.reason, dialect),
    }))
    .sort((a, b) => (a.position ?? Number.MAX_SAFE_INTEGER) - (b.position ?? Number.MAX_SAFE_INTEGER));
}

/** The list of problems with one value for a dialect (empty = acceptable), ordered by position. */
export function valueProblems(key: string, value: string | Buffer, dialect: DotenvDialect): ValueProblem[] {
  return problemsOf(key, decodeValue(value), dialect);
}

// ---------------------------------------------------------------------------------------------
// Encoders. Each one is only called on a value that passed its dialect's checks.
// Replacements are function-based: a replacement string would give `$$` a special meaning.

const COMPOSE_ESC: Record<string, string> = { "\\": "\\\\", '"': '\\"', $: "$$", "\n": "\\n", "\r": "\\r" };
const PY_ESC: Record<string, string> = { "\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r" };

function encodeValue(v: string, dialect: EnvDialect): string {
  switch (dialect) {
    case "portable":
      return `'${v}'`;
    case "sh":
      return `'${v.replace(/'/g, () => "'\\''")}'`;
    case "compose":
      return `"${v.replace(/[\\"$\n\r]/g, (c) => COMPOSE_ESC[c] ?? c)}"`;
    case "python-dotenv":
      return `"${v.replace(/[\\"\n\r]/g, (c) => PY_ESC[c] ?? c)}"`;
    case "posix":
    case "systemd":
      return `"${v.replace(/[\\"$`]/g, (c) => `\\${c}`)}"`;
    case "verbatim":
      return v;
    case "dotenv": {
      const q = npmQuote(v);
      if (q === '"') return `"${v.replace(/[\n\r]/g, (c) => (c === "\n" ? "\\n" : "\\r"))}"`;
      if (q === null) throw new VrError("INTERNAL", "dotenv: no quote style fits (value should have been refused)");
      return `${q}${v}${q}`;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Whole file

function refusal(key: string, ctx: EnvContext, dialect: EnvDialect, what: string, extra: string, hint: string): VrError {
  return new VrError("DOTENV_REFUSED", `cannot write ${key} to ${ctx.file} (dialect "${dialect}"): ${what}${extra}`, { hint });
}

/**
 * Encode a whole .env file: UTF-8, no BOM, LF, one `KEY=<encoded>` per line, final LF, no `export`, no
 * comments. Throws VrError("DOTENV_REFUSED") for the first refused entry (bad key, duplicate key or
 * refused value). Messages name the key, file, dialect, character class, position and the consumer
 * that breaks, never the value.
 */
export function encodeEnvFile(entries: EnvEntry[], dialect: EnvDialect, ctx: EnvContext): string {
  if (dialect !== "verbatim" && !DOTENV_DIALECTS.includes(dialect)) {
    throw new VrError("DOTENV_REFUSED", `cannot write ${ctx.file}: unknown dotenv dialect ${JSON.stringify(dialect)}`, {
      hint: `use one of ${DOTENV_DIALECTS.join(", ")}, verbatim`,
    });
  }
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const { key, value } of entries) {
    const keyProblem = checkEnvKey(key, dialect);
    if (keyProblem !== null) {
      const readonly = KEY_RE.test(key);
      throw refusal(
        readonly ? key : JSON.stringify(key),
        ctx,
        dialect,
        keyProblem,
        ".",
        readonly
          ? "rename the key in the template; bash reserves it"
          : "rename the key in the template (letters, digits and _ only, not starting with a digit)",
      );
    }
    if (seen.has(key)) {
      throw refusal(
        key,
        ctx,
        dialect,
        "the key appears more than once",
        "; consumers disagree on which one wins (and `config()` in npm dotenv never overrides), so each key must be written once.",
        "remove the duplicate key from the template",
      );
    }
    seen.add(key);

    const decoded = decodeValue(value);
    const problems = problemsOf(key, decoded, dialect);
    const first = problems[0];
    if (first !== undefined) {
      const where = first.position === null ? "" : ` at character ${first.position}`;
      const others = [...new Set(problems.slice(1).map((p) => p.reason))];
      const also = others.length > 0 ? ` (also: ${others.join(", ")})` : "";
      const fits = DOTENV_DIALECTS.filter((d) => d !== dialect && problemsOf(key, decoded, d).length === 0);
      const unfixable = problems.some((p) => ["NUL", "not UTF-8", "not well-formed", "too long"].includes(p.reason));
      const advice = unfixable
        ? problems.some((p) => p.reason === "too long")
          ? " No dialect can carry it: render it to its own file instead, or shorten the secret."
          : " No dialect can carry it: rotate the secret, or store it base64-encoded and decode it in the application."
        : fits.length > 0
          ? ` Use a per-file dialect (${fits.join(" | ")}) or rotate the secret.`
          : " No dialect can carry it: rotate the secret.";
      const hint = unfixable
        ? "NUL, invalid UTF-8 and values over 128 KiB never reach a process environment intact"
        : fits.length > 0
          ? `set the file's dialect to the program that reads ${ctx.file} (${fits.join(", ")} accept this value)`
          : "rotate the secret to one without these characters";
      throw refusal(
        key,
        ctx,
        dialect,
        `${describe(first.reason)}${where}${also}`,
        `; ${first.consumers}.${advice}`,
        hint,
      );
    }
    lines.push(`${key}=${encodeValue(decoded.text, dialect)}\n`);
  }
  return lines.join("");
}
