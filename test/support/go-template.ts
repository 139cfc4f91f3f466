/**
 * An evaluator for the subset of Go text/template (and of the sprig / operator functions) that the
 * exported templates use, written from their documented semantics, so that tests can render what
 * VSO and ESO would render and compare it with vault-render's bytes.
 *
 * Go strings are bytes: every string here is a "byte string" (one JS char per byte, 0–255), made
 * from UTF-8 on the way in (`goData`) and turned back into a Buffer on the way out (`renderGo`).
 * Covered: text, {{ pipeline }}, {{- / -}} trimming, $x := / $x =, if / else if / else, range with
 * 0, 1 or 2 variables over lists and maps (maps in sorted key order), parenthesised pipelines,
 * interpreted and raw string literals, true/false, `.`, `.Field`, `$`. Functions: and, or, not,
 * index, printf (%s only), and sprig's get, hasKey, fail, replace, contains, hasPrefix, hasSuffix,
 * trimPrefix, trimAll, nospace, b64enc, b64dec. Strict where Go is: a string function given a
 * non-string fails, an unknown function fails at parse time.
 */

type Value = string | boolean | number | null | undefined | Value[] | { [k: string]: Value };

/** UTF-8 text → byte string. */
function bytesOf(s: string | Buffer): string {
  return (typeof s === "string" ? Buffer.from(s, "utf8") : s).toString("latin1");
}

/** Deep conversion of JSON-like data (strings as UTF-8) into template data. */
export function goData(v: unknown): Value {
  if (typeof v === "string") return bytesOf(v);
  if (Buffer.isBuffer(v)) return v.toString("latin1");
  if (Array.isArray(v)) return v.map(goData);
  if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [bytesOf(k), goData(x)]));
  return v as Value;
}

// ---------------------------------------------------------------------------------------------
// Lexing and parsing

type Tok =
  | { t: "str"; v: string }
  | { t: "id"; v: string }
  | { t: "var"; v: string }
  | { t: "field"; v: string }
  | { t: "dot" }
  | { t: "bool"; v: boolean }
  | { t: "num"; v: number }
  | { t: "("; v?: undefined }
  | { t: ")"; v?: undefined }
  | { t: "|"; v?: undefined }
  | { t: ":="; v?: undefined }
  | { t: "="; v?: undefined }
  | { t: ","; v?: undefined };

type Operand = { k: "str"; v: string } | { k: "bool"; v: boolean } | { k: "num"; v: number } | { k: "dot" } | { k: "field"; path: string[] } | { k: "var"; name: string; path: string[] } | { k: "pipe"; p: Pipeline } | { k: "fn"; name: string };
interface Command {
  args: Operand[];
}
interface Pipeline {
  decl: string[];
  assign: boolean;
  cmds: Command[];
}
type Node =
  | { n: "text"; v: string }
  | { n: "action"; p: Pipeline }
  | { n: "if"; p: Pipeline; then: Node[]; else: Node[] }
  | { n: "range"; p: Pipeline; body: Node[]; else: Node[] };

const FUNCS = new Set(["and", "or", "not", "index", "printf", "get", "hasKey", "fail", "replace", "contains", "hasPrefix", "hasSuffix", "trimPrefix", "trimAll", "nospace", "b64enc", "b64dec"]);

/** A Go interpreted string literal's value (as UTF-8 bytes), from `src` at `i` (the opening quote). */
function readString(src: string, i: number): [string, number] {
  const bytes: number[] = [];
  let j = i + 1;
  const pushRune = (cp: number) => bytes.push(...Buffer.from(String.fromCodePoint(cp), "utf8"));
  while (j < src.length && src[j] !== '"') {
    const c = src[j] as string;
    if (c === "\n") throw new Error("go-template: newline in string literal");
    if (c !== "\\") {
      const cp = src.codePointAt(j) as number;
      pushRune(cp);
      j += cp > 0xffff ? 2 : 1;
      continue;
    }
    const e = src[j + 1];
    const simple: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, "\\": 92, '"': 34 };
    if (e !== undefined && e in simple) {
      bytes.push(simple[e] as number);
      j += 2;
    } else if (e === "x") {
      bytes.push(parseInt(src.slice(j + 2, j + 4), 16));
      j += 4;
    } else if (e === "u" || e === "U") {
      const n = e === "u" ? 4 : 8;
      pushRune(parseInt(src.slice(j + 2, j + 2 + n), 16));
      j += 2 + n;
    } else if (e !== undefined && /[0-7]/.test(e)) {
      bytes.push(parseInt(src.slice(j + 1, j + 4), 8));
      j += 4;
    } else throw new Error(`go-template: unknown escape \\${e}`);
  }
  if (src[j] !== '"') throw new Error("go-template: unterminated string");
  return [Buffer.from(bytes).toString("latin1"), j + 1];
}

/** Tokens of one action, from `i` (after `{{` and an optional `- `) up to `}}`; returns the end index. */
function lexAction(src: string, i: number): { toks: Tok[]; end: number; trimRight: boolean } {
  const toks: Tok[] = [];
  let j = i;
  for (;;) {
    while (j < src.length && /[ \t\r\n]/.test(src[j] as string)) j++;
    if (src.startsWith("-}}", j) && /[ \t\r\n]/.test(src[j - 1] ?? "")) return { toks, end: j + 3, trimRight: true };
    if (src.startsWith("}}", j)) return { toks, end: j + 2, trimRight: false };
    if (j >= src.length) throw new Error("go-template: unclosed action");
    const c = src[j] as string;
    if (c === '"') {
      const [v, k] = readString(src, j);
      toks.push({ t: "str", v });
      j = k;
    } else if (c === "`") {
      const k = src.indexOf("`", j + 1);
      toks.push({ t: "str", v: bytesOf(src.slice(j + 1, k)) });
      j = k + 1;
    } else if (c === "(" || c === ")" || c === "|" || c === ",") {
      toks.push({ t: c });
      j++;
    } else if (src.startsWith(":=", j)) {
      toks.push({ t: ":=" });
      j += 2;
    } else if (c === "=") {
      toks.push({ t: "=" });
      j++;
    } else if (c === "$") {
      const m = /^\$[A-Za-z0-9_]*/.exec(src.slice(j)) as RegExpExecArray;
      toks.push({ t: "var", v: m[0] });
      j += m[0].length;
    } else if (c === ".") {
      const m = /^\.[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(j));
      if (m) {
        toks.push({ t: "field", v: m[0].slice(1) });
        j += m[0].length;
      } else {
        toks.push({ t: "dot" });
        j++;
      }
    } else if (/[0-9-]/.test(c)) {
      const m = /^-?[0-9]+/.exec(src.slice(j)) as RegExpExecArray;
      toks.push({ t: "num", v: Number(m[0]) });
      j += m[0].length;
    } else {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(j));
      if (!m) throw new Error(`go-template: unexpected ${JSON.stringify(c)}`);
      const w = m[0];
      toks.push(w === "true" || w === "false" ? { t: "bool", v: w === "true" } : { t: "id", v: w });
      j += w.length;
    }
  }
}

function parsePipeline(toks: Tok[], pos: { i: number }, stopAtParen: boolean): Pipeline {
  const decl: string[] = [];
  let assign = false;
  // $a := … , $a, $b := …, $a = …
  const save = pos.i;
  const vars: string[] = [];
  while (toks[pos.i]?.t === "var") {
    vars.push((toks[pos.i] as { v: string }).v);
    pos.i++;
    if (toks[pos.i]?.t === ",") pos.i++;
    else break;
  }
  const op = toks[pos.i]?.t;
  if (vars.length > 0 && (op === ":=" || op === "=")) {
    decl.push(...vars);
    assign = op === "=";
    pos.i++;
  } else pos.i = save;
  const cmds: Command[] = [];
  let args: Operand[] = [];
  for (;;) {
    const t = toks[pos.i];
    if (t === undefined || (t.t === ")" && stopAtParen)) break;
    pos.i++;
    if (t.t === "|") {
      cmds.push({ args });
      args = [];
      continue;
    }
    if (t.t === "(") {
      args.push({ k: "pipe", p: parsePipeline(toks, pos, true) });
      if (toks[pos.i]?.t !== ")") throw new Error("go-template: missing )");
      pos.i++;
    } else if (t.t === "str") args.push({ k: "str", v: t.v });
    else if (t.t === "bool") args.push({ k: "bool", v: t.v });
    else if (t.t === "num") args.push({ k: "num", v: t.v });
    else if (t.t === "dot") args.push({ k: "dot" });
    else if (t.t === "field") {
      const path = [t.v];
      while (toks[pos.i]?.t === "field") path.push((toks[pos.i++] as { v: string }).v);
      args.push({ k: "field", path });
    } else if (t.t === "var") {
      const path: string[] = [];
      while (toks[pos.i]?.t === "field") path.push((toks[pos.i++] as { v: string }).v);
      args.push({ k: "var", name: t.v, path });
    } else if (t.t === "id") {
      if (!FUNCS.has(t.v)) throw new Error(`go-template: function "${t.v}" not defined`);
      args.push({ k: "fn", name: t.v });
    } else throw new Error(`go-template: unexpected token ${t.t}`);
  }
  cmds.push({ args });
  if (cmds.some((c) => c.args.length === 0)) throw new Error("go-template: empty command");
  return { decl, assign, cmds };
}

interface Item {
  kind: "text" | "action";
  text?: string;
  toks?: Tok[];
}

function items(src: string): Item[] {
  const out: Item[] = [];
  let i = 0;
  let trimNext = false;
  while (i < src.length) {
    const open = src.indexOf("{{", i);
    let text = open < 0 ? src.slice(i) : src.slice(i, open);
    if (trimNext) text = text.replace(/^[ \t\r\n]+/, "");
    if (open < 0) {
      if (text) out.push({ kind: "text", text });
      break;
    }
    let start = open + 2;
    if (src.startsWith("- ", start) || src.startsWith("-\n", start) || src.startsWith("-\t", start)) {
      text = text.replace(/[ \t\r\n]+$/, "");
      start += 2;
    }
    if (text) out.push({ kind: "text", text });
    const { toks, end, trimRight } = lexAction(src, start);
    out.push({ kind: "action", toks });
    trimNext = trimRight;
    i = end;
  }
  return out;
}

function parse(src: string): Node[] {
  const list = items(src);
  let k = 0;
  const block = (): { nodes: Node[]; ended: "end" | "else" | "elseif" | "eof"; elseToks?: Tok[] } => {
    const nodes: Node[] = [];
    while (k < list.length) {
      const it = list[k++] as Item;
      if (it.kind === "text") {
        nodes.push({ n: "text", v: bytesOf(it.text as string) });
        continue;
      }
      const toks = it.toks as Tok[];
      const head = toks[0];
      if (head?.t === "id" && head.v === "end") return { nodes, ended: "end" };
      if (head?.t === "id" && head.v === "else") {
        if (toks[1]?.t === "id" && toks[1].v === "if") return { nodes, ended: "elseif", elseToks: toks.slice(2) };
        return { nodes, ended: "else" };
      }
      if (head?.t === "id" && (head.v === "if" || head.v === "range")) {
        nodes.push(control(head.v, toks.slice(1)));
        continue;
      }
      nodes.push({ n: "action", p: parsePipeline(toks, { i: 0 }, false) });
    }
    return { nodes, ended: "eof" };
  };
  const control = (kind: "if" | "range", toks: Tok[]): Node => {
    const p = parsePipeline(toks, { i: 0 }, false);
    const body = block();
    let elseNodes: Node[] = [];
    if (body.ended === "else") {
      const e = block();
      if (e.ended !== "end") throw new Error(`go-template: ${kind} without end`);
      elseNodes = e.nodes;
    } else if (body.ended === "elseif") {
      elseNodes = [control("if", body.elseToks as Tok[])];
    } else if (body.ended !== "end") throw new Error(`go-template: ${kind} without end`);
    return kind === "if" ? { n: "if", p, then: body.nodes, else: elseNodes } : { n: "range", p, body: body.nodes, else: elseNodes };
  };
  const top = block();
  if (top.ended !== "eof") throw new Error(`go-template: unexpected {{ ${top.ended} }}`);
  return top.nodes;
}

// ---------------------------------------------------------------------------------------------
// Evaluation

function truth(v: Value): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === "") return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === "object") return Object.keys(v).length > 0;
  return true;
}

function show(v: Value): string {
  if (v === null || v === undefined) return "<no value>";
  if (typeof v === "string") return v;
  if (typeof v === "boolean" || typeof v === "number") return String(v);
  if (Array.isArray(v)) return `[${v.map(show).join(" ")}]`;
  return `map[${Object.keys(v)
    .sort()
    .map((k) => `${k}:${show(v[k])}`)
    .join(" ")}]`;
}

function str(v: Value, fn: string): string {
  if (typeof v !== "string") throw new Error(`go-template: ${fn}: wrong type for value; expected string; got ${v === null || v === undefined ? "nil" : Array.isArray(v) ? "slice" : typeof v}`);
  return v;
}

/** byte string → runes (code points) and back, for the rune-wise functions. */
const runes = (s: string): string[] => [...Buffer.from(s, "latin1").toString("utf8")];
const unrunes = (r: string[]): string => Buffer.from(r.join(""), "utf8").toString("latin1");

/** unicode.IsSpace */
const GO_SPACE = new Set(["\t", "\n", "\v", "\f", "\r", " ", "\u0085", "\u00a0", "\u1680", "\u2000", "\u2001", "\u2002", "\u2003", "\u2004", "\u2005", "\u2006", "\u2007", "\u2008", "\u2009", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"]);

/** encoding/base64 StdEncoding.DecodeString (CR and LF ignored, padding required); sprig returns the error text. */
function b64dec(s: string): string {
  const clean = s.replace(/[\r\n]/g, "");
  const m = /^[A-Za-z0-9+/]*(={0,2})$/.exec(clean);
  if (!m || clean.length % 4 !== 0) {
    const bad = clean.search(/[^A-Za-z0-9+/=]/);
    return `illegal base64 data at input byte ${bad >= 0 ? bad : clean.length - (clean.length % 4)}`;
  }
  return Buffer.from(clean, "base64").toString("latin1");
}

function call(name: string, a: Value[]): Value {
  const s = (i: number) => str(a[i], name);
  switch (name) {
    case "not":
      return !truth(a[0]);
    case "and": {
      for (const x of a) if (!truth(x)) return x;
      return a[a.length - 1];
    }
    case "or": {
      for (const x of a) if (truth(x)) return x;
      return a[a.length - 1];
    }
    case "index": {
      let v = a[0];
      for (const k of a.slice(1)) {
        if (v === null || v === undefined) throw new Error("go-template: index of untyped nil");
        v = (v as Record<string, Value>)[k as string];
      }
      return v;
    }
    case "get": {
      const m = a[0] as Record<string, Value>;
      return Object.prototype.hasOwnProperty.call(m, s(1)) ? (m[s(1)]) : "";
    }
    case "hasKey":
      return Object.prototype.hasOwnProperty.call(a[0] as object, s(1));
    case "fail":
      throw new Error(`go-template: fail: ${s(0)}`);
    case "printf": {
      let i = 1;
      return s(0).replace(/%[s%]/g, (m) => (m === "%%" ? "%" : show(a[i++])));
    }
    case "replace":
      return s(2).split(s(0)).join(s(1));
    case "contains":
      return s(1).includes(s(0));
    case "hasPrefix":
      return s(1).startsWith(s(0));
    case "hasSuffix":
      return s(1).endsWith(s(0));
    case "trimPrefix":
      return s(1).startsWith(s(0)) ? s(1).slice(s(0).length) : s(1);
    case "trimAll": {
      const cut = new Set(runes(s(0)));
      const r = runes(s(1));
      let b = 0;
      let e = r.length;
      while (b < e && cut.has(r[b] as string)) b++;
      while (e > b && cut.has(r[e - 1] as string)) e--;
      return unrunes(r.slice(b, e));
    }
    case "nospace":
      return unrunes(runes(s(0)).filter((c) => !GO_SPACE.has(c)));
    case "b64enc":
      return Buffer.from(s(0), "latin1").toString("base64");
    case "b64dec":
      return b64dec(s(0));
  }
  throw new Error(`go-template: function ${name} not defined`);
}

type Scope = Array<Map<string, Value>>;

function lookupVar(scope: Scope, name: string): Value {
  for (let i = scope.length - 1; i >= 0; i--) if (scope[i]?.has(name)) return scope[i]?.get(name);
  throw new Error(`go-template: undefined variable ${name}`);
}

function field(v: Value, path: string[]): Value {
  let cur = v;
  for (const p of path) {
    if (cur === null || cur === undefined || typeof cur !== "object" || Array.isArray(cur)) throw new Error(`go-template: can't evaluate field ${p}`);
    cur = (cur as Record<string, Value>)[p];
  }
  return cur;
}

function evalOperand(o: Operand, dot: Value, scope: Scope): Value {
  switch (o.k) {
    case "str":
      return o.v;
    case "bool":
      return o.v;
    case "num":
      return o.v;
    case "dot":
      return dot;
    case "field":
      return field(dot, o.path);
    case "var":
      return field(lookupVar(scope, o.name), o.path);
    case "pipe":
      return evalPipeline(o.p, dot, scope, false);
    case "fn":
      return call(o.name, []);
  }
}

function evalPipeline(p: Pipeline, dot: Value, scope: Scope, declare: boolean): Value {
  let prev: Value | typeof NONE = NONE;
  for (const c of p.cmds) {
    const [head, ...rest] = c.args;
    const extra = prev === NONE ? [] : [prev];
    if (head?.k === "fn") prev = call(head.name, [...rest.map((r) => evalOperand(r, dot, scope)), ...extra]);
    else {
      if (rest.length > 0 || extra.length > 0) throw new Error("go-template: can't give argument to non-function");
      prev = evalOperand(head as Operand, dot, scope);
    }
  }
  const value = prev as Value;
  if (p.decl.length > 0 && declare) {
    const name = p.decl[0] as string;
    if (p.assign) {
      for (let i = scope.length - 1; i >= 0; i--) {
        if (scope[i]?.has(name)) {
          scope[i]?.set(name, value);
          return value;
        }
      }
      throw new Error(`go-template: undefined variable ${name}`);
    }
    scope[scope.length - 1]?.set(name, value);
  }
  return value;
}
const NONE = Symbol("none");

function run(nodes: Node[], dot: Value, scope: Scope, out: string[]): void {
  for (const n of nodes) {
    if (n.n === "text") out.push(n.v);
    else if (n.n === "action") {
      const v = evalPipeline(n.p, dot, scope, true);
      if (n.p.decl.length === 0) out.push(show(v));
    } else if (n.n === "if") {
      scope.push(new Map());
      const v = evalPipeline(n.p, dot, scope, true);
      run(truth(v) ? n.then : n.else, dot, scope, out);
      scope.pop();
    } else {
      const decl = n.p.decl;
      const v = evalPipeline({ ...n.p, decl: [] }, dot, scope, false);
      const entries: Array<[Value, Value]> = Array.isArray(v)
        ? v.map((x, i) => [i, x])
        : v && typeof v === "object"
          ? Object.keys(v)
              .sort()
              .map((k) => [k, (v as Record<string, Value>)[k]])
          : v === null || v === undefined
            ? []
            : (() => {
                throw new Error(`go-template: range can't iterate over ${show(v)}`);
              })();
      if (entries.length === 0) {
        run(n.else, dot, scope, out);
        continue;
      }
      for (const [k, x] of entries) {
        const s = new Map<string, Value>();
        if (decl.length === 1) s.set(decl[0] as string, x);
        if (decl.length === 2) {
          s.set(decl[0] as string, k);
          s.set(decl[1] as string, x);
        }
        scope.push(s);
        run(n.body, x, scope, out);
        scope.pop();
      }
    }
  }
}

/** Render `text` against `data` (already converted with goData); the bytes Go would produce. */
export function renderGo(text: string, data: unknown): Buffer {
  const nodes = parse(text);
  const root = data as Value;
  const out: string[] = [];
  run(nodes, root, [new Map([["$", root]])], out);
  return Buffer.from(out.join(""), "latin1");
}
