/**
 * Reading what can be read from a state file that does not parse: a truncated write, a disk
 * error, a hand edit. A tolerant JSON parse keeps every member that was complete before the
 * damage; the caller then keeps each record that still validates on its own.
 */

const FAIL = Symbol("fail");

/** Parse as much of `text` as is well-formed: containers cut short keep their complete members. */
export function tolerantJsonParse(text: string): unknown {
  let i = 0;
  let stopped = false;
  const ws = () => {
    while (i < text.length && (text[i] === " " || text[i] === "\n" || text[i] === "\r" || text[i] === "\t")) i++;
  };
  // A JSON string (control characters are refused by JSON.parse below).
  const STRING = /"(?:[^"\\]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
  const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const str = (): string | typeof FAIL => {
    STRING.lastIndex = i;
    const m = STRING.exec(text);
    if (!m) return FAIL;
    let v: string;
    try {
      v = JSON.parse(m[0]) as string;
    } catch {
      return FAIL;
    }
    i += m[0].length;
    return v;
  };
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === "{") return obj();
    if (c === "[") return arr();
    if (c === '"') return str();
    for (const [word, v] of [["true", true], ["false", false], ["null", null]] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    // A number that runs into the end of the text may have been cut short.
    if (!m || i + m[0].length >= text.length) return FAIL;
    i += m[0].length;
    return Number(m[0]);
  };
  const obj = (): Record<string, unknown> => {
    i++;
    const out = Object.create(null) as Record<string, unknown>;
    for (let first = true; ; first = false) {
      ws();
      if (text[i] === "}") {
        i++;
        return out;
      }
      if (!first) {
        if (text[i] !== ",") return stop(out);
        i++;
        ws();
      }
      const key = str();
      if (key === FAIL) return stop(out);
      ws();
      if (text[i] !== ":") return stop(out);
      i++;
      const v = value();
      if (v === FAIL) return stop(out);
      out[key] = v;
      if (stopped) return out;
    }
  };
  const arr = (): unknown[] => {
    i++;
    const out: unknown[] = [];
    for (let first = true; ; first = false) {
      ws();
      if (text[i] === "]") {
        i++;
        return out;
      }
      if (!first) {
        if (text[i] !== ",") return stop(out);
        i++;
      }
      const v = value();
      if (v === FAIL) return stop(out);
      out.push(v);
      if (stopped) return out;
    }
  };
  const stop = <T>(partial: T): T => {
    stopped = true;
    return partial;
  };
  const v = value();
  return v === FAIL ? null : v;
}

/** Every lease id mentioned anywhere in the text, even in records that cannot be recovered. */
export function leaseIdsIn(text: string): string[] {
  const ids = new Set<string>();
  for (const m of text.matchAll(/"leaseId"\s*:\s*"((?:[^"\\]|\\.)+)"/g)) {
    try {
      ids.add(JSON.parse(`"${m[1] as string}"`) as string);
    } catch {
      // a broken escape: not an id we can name
    }
  }
  return [...ids];
}
