/**
 * A test model of systemd's `EnvironmentFile=` reader (v252: `parse_env_file_internal` +
 * `load_env_file_push` in src/basic/env-file.c, the UTF-8/noncharacter check and the env-name check),
 * written from shared/dotenv.md §2.4. PID 1 is not systemd on these machines, so units cannot be run;
 * dotenv.systemd-model.test.ts checks this model against the documented expectations.
 * It works on bytes, like the C code.
 */

export class SystemdEinvalError extends Error {
  override name = "SystemdEinvalError";
}

enum S {
  PreKey,
  Key,
  PreValue,
  Value,
  ValueEscape,
  SingleQuote,
  DoubleQuote,
  DoubleQuoteEscape,
  Comment,
  CommentEscape,
}

const isWhitespace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
const isNewline = (c: number): boolean => c === 0x0a || c === 0x0d;
const isComment = (c: number): boolean => c === 0x23 || c === 0x3b; // # ;
const needsEscape = (c: number): boolean => c === 0x22 || c === 0x5c || c === 0x60 || c === 0x24; // " \ ` $

/** utf8_is_valid(): well-formed UTF-8 without surrogates or noncharacters. */
function utf8IsValid(bytes: number[]): string | null {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(Uint8Array.from(bytes));
  } catch {
    return null;
  }
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) return null;
  }
  return text;
}

const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** sc_arg_max() on Linux is at least 2 MiB; values above ARG_MAX-3 are dropped. */
const ARG_MAX = 2 * 1024 * 1024;

/**
 * Load an environment file like systemd ≥ 248. Returns the environment that a unit would get; throws
 * SystemdEinvalError where `load_env_file` fails (the unit would not start).
 */
export function loadSystemdEnvFile(input: string | Buffer): Map<string, string> {
  const buf = typeof input === "string" ? Buffer.from(input, "utf8") : input;
  const nul = buf.indexOf(0);
  const bytes = nul >= 0 ? buf.subarray(0, nul) : buf; // a C string: reading stops at the first NUL

  const assignments: [string, string][] = [];
  let state = S.PreKey;
  let key: number[] = [];
  let value: number[] | null = null;
  let lastKeyWs = -1;
  let lastValueWs = -1;

  const push = (chompValue: boolean): void => {
    const k = lastKeyWs >= 0 ? key.slice(0, lastKeyWs) : key;
    let v = value ?? [];
    if (chompValue && lastValueWs >= 0) v = v.slice(0, lastValueWs);
    const ks = utf8IsValid(k);
    if (ks === null) throw new SystemdEinvalError("invalid UTF-8 in key");
    const vs = utf8IsValid(v);
    if (vs === null) throw new SystemdEinvalError(`invalid UTF-8 value for key ${ks}`);
    assignments.push([ks, vs]);
    key = [];
    value = null;
  };
  const valueLength = (): number => value?.length ?? 0;
  const addValue = (c: number): void => {
    (value ??= []).push(c);
  };

  for (const c of bytes) {
    switch (state) {
      case S.PreKey:
        if (isComment(c)) state = S.Comment;
        else if (!isWhitespace(c)) {
          state = S.Key;
          lastKeyWs = -1;
          key = [c];
        }
        break;
      case S.Key:
        if (isNewline(c)) {
          state = S.PreKey;
          key = [];
        } else if (c === 0x3d) {
          state = S.PreValue;
          lastValueWs = -1;
        } else {
          if (!isWhitespace(c)) lastKeyWs = -1;
          else if (lastKeyWs < 0) lastKeyWs = key.length;
          key.push(c);
        }
        break;
      case S.PreValue:
        if (isNewline(c)) {
          state = S.PreKey;
          push(false);
        } else if (c === 0x27) state = S.SingleQuote;
        else if (c === 0x22) state = S.DoubleQuote;
        else if (c === 0x5c) state = S.ValueEscape;
        else if (!isWhitespace(c)) {
          state = S.Value;
          addValue(c);
        }
        break;
      case S.Value:
        if (isNewline(c)) {
          state = S.PreKey;
          push(true);
        } else if (c === 0x5c) {
          state = S.ValueEscape;
          lastValueWs = -1;
        } else {
          if (!isWhitespace(c)) lastValueWs = -1;
          else if (lastValueWs < 0) lastValueWs = valueLength();
          addValue(c);
        }
        break;
      case S.ValueEscape:
        state = S.Value;
        if (!isNewline(c)) addValue(c); // backslash-newline is a continuation
        break;
      case S.SingleQuote:
        if (c === 0x27) state = S.PreValue;
        else addValue(c);
        break;
      case S.DoubleQuote:
        if (c === 0x22) state = S.PreValue;
        else if (c === 0x5c) state = S.DoubleQuoteEscape;
        else addValue(c);
        break;
      case S.DoubleQuoteEscape:
        state = S.DoubleQuote;
        if (needsEscape(c)) addValue(c);
        else if (c !== 0x0a) {
          addValue(0x5c);
          addValue(c);
        }
        break;
      case S.Comment:
        if (c === 0x5c) state = S.CommentEscape;
        else if (isNewline(c)) state = S.PreKey;
        break;
      case S.CommentEscape:
        state = S.Comment;
        break;
    }
  }
  if (
    state === S.PreValue ||
    state === S.Value ||
    state === S.ValueEscape ||
    state === S.SingleQuote ||
    state === S.DoubleQuote ||
    state === S.DoubleQuoteEscape
  ) {
    push(state === S.Value);
  }

  // strv_env_replace (last one wins), then the exec-time clean-up drops invalid assignments
  // ("Ignoring invalid environment assignment"): bad names such as `export FOO`, oversize values.
  const env = new Map<string, string>();
  for (const [k, v] of assignments) {
    if (!ENV_NAME_RE.test(k) || Buffer.byteLength(v) > ARG_MAX - 3) continue;
    env.set(k, v);
  }
  return env;
}
