/**
 * A lexer and parser for the subset of Go's text/template that Vault Agent and consul-template
 * templates use: text, actions with pipelines, trim markers (`{{- ` / ` -}}`), custom delimiters,
 * comments, `with` / `range` / `if` / `else` / `end`, variables, fields and string literals. Every
 * node carries its 1-based line. Anything the subset does not cover still parses into a node the
 * translator can refuse by name; only text that Go itself would reject is a parse error.
 */

export type Term =
  | { kind: "field"; chain: string[]; line: number } // .Data.data.k (chain ["Data","data","k"]); "." alone is []
  | { kind: "string"; value: string; line: number }
  | { kind: "ident"; name: string; line: number } // a function name
  | { kind: "var"; name: string; chain: string[]; line: number } // $k or $x.Field
  | { kind: "other"; text: string; line: number } // numbers, booleans, nil, parentheses
  | { kind: "paren"; pipe: Pipeline; line: number };

export interface Command {
  args: Term[];
  line: number;
}

export interface Pipeline {
  decl: string[]; // variables declared (`$k, $v :=`)
  assign: boolean; // `=` or `:=` present
  cmds: Command[];
  line: number;
}

export type Node =
  | { kind: "text"; text: string; line: number }
  | { kind: "action"; pipe: Pipeline; line: number }
  | { kind: "with" | "if" | "range"; pipe: Pipeline; body: Node[]; elseBody: Node[] | null; elseLine: number | null; line: number }
  | { kind: "keyword"; name: string; line: number }; // define, template, block, break, continue

export class TemplateSyntaxError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
  }
}

type Tok =
  | { t: "text"; text: string; line: number }
  | { t: "action"; inner: string; line: number; innerLine: number };

const SPACE = /[ \t\r\n]/;

/** Split into text and action tokens, with trim markers applied to the neighbouring text. */
export function lex(src: string, left = "{{", right = "}}"): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  let line = 1;
  let trimNext = false;
  const countLines = (s: string) => {
    let n = 0;
    for (let k = 0; k < s.length; k++) if (s.charCodeAt(k) === 10) n++;
    return n;
  };
  const pushText = (text: string, at: number) => {
    if (text.length > 0) toks.push({ t: "text", text, line: at });
  };
  while (i <= src.length) {
    const open = src.indexOf(left, i);
    let text = open < 0 ? src.slice(i) : src.slice(i, open);
    const textLine = line;
    line += countLines(text);
    let lead = 0;
    if (trimNext) {
      const before = text.length;
      text = text.replace(/^[ \t\r\n]+/, "");
      lead = before - text.length;
    }
    if (open < 0) {
      pushText(text, textLine + countLines(src.slice(i, i + lead)));
      break;
    }
    let j = open + left.length;
    const trimLeft = src[j] === "-" && SPACE.test(src[j + 1] ?? "");
    if (trimLeft) {
      text = text.replace(/[ \t\r\n]+$/, "");
      j += 1;
    }
    pushText(text, textLine + countLines(src.slice(i, i + lead)));
    const actionLine = line;
    // A comment: /* … */ right after the delimiter (and its trim marker's space).
    let k = j;
    while (SPACE.test(src[k] ?? "")) k++;
    let end: number;
    if (src.startsWith("/*", k)) {
      const close = src.indexOf("*/", k + 2);
      if (close < 0) throw new TemplateSyntaxError(actionLine, "unclosed comment");
      let m = close + 2;
      while (SPACE.test(src[m] ?? "")) m++;
      let trimRight = false;
      if (src[m] === "-" && src.startsWith(right, m + 1) && SPACE.test(src[m - 1] ?? "")) {
        trimRight = true;
        m += 1;
      }
      if (!src.startsWith(right, m)) throw new TemplateSyntaxError(actionLine, "comment ends before the closing delimiter");
      end = m + right.length;
      line += countLines(src.slice(open, end));
      trimNext = trimRight;
      i = end;
      continue;
    }
    // Find the closing delimiter outside string literals.
    let q = j;
    let close = -1;
    while (q < src.length) {
      const c = src[q];
      if (c === '"') {
        q++;
        while (q < src.length && src[q] !== '"') {
          if (src[q] === "\\") q++;
          if (src[q] === "\n") throw new TemplateSyntaxError(line, "unterminated quoted string");
          q++;
        }
        q++;
        continue;
      }
      if (c === "`") {
        const e = src.indexOf("`", q + 1);
        if (e < 0) throw new TemplateSyntaxError(line, "unterminated raw string");
        q = e + 1;
        continue;
      }
      if (src.startsWith(right, q)) {
        close = q;
        break;
      }
      q++;
    }
    if (close < 0) throw new TemplateSyntaxError(actionLine, `unclosed action (no "${right}")`);
    let innerEnd = close;
    let trimRight = false;
    if (src[close - 1] === "-" && SPACE.test(src[close - 2] ?? "")) {
      trimRight = true;
      innerEnd = close - 1;
    }
    const inner = src.slice(j, innerEnd);
    end = close + right.length;
    toks.push({ t: "action", inner, line: actionLine, innerLine: actionLine });
    line += countLines(src.slice(open, end));
    trimNext = trimRight;
    i = end;
  }
  return toks;
}

// ---------------------------------------------------------------------------------------------
// Pipelines

type PTok = { k: "str" | "field" | "var" | "ident" | "pipe" | "lp" | "rp" | "decl" | "assign" | "comma" | "other"; v: string; line: number; chain?: string[] };

function unquote(s: string, line: number): string {
  if (s.startsWith("`")) return s.slice(1, -1);
  try {
    return JSON.parse(s.replace(/\\x([0-9a-fA-F]{2})/g, "\\u00$1").replace(/\\'/g, "'")) as string;
  } catch {
    throw new TemplateSyntaxError(line, "bad quoted string");
  }
}

function tokenize(src: string, line0: number): PTok[] {
  const out: PTok[] = [];
  let i = 0;
  let line = line0;
  while (i < src.length) {
    const c = src[i] as string;
    if (c === "\n") {
      line++;
      i++;
      continue;
    }
    if (SPACE.test(c)) {
      i++;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== '"') j += src[j] === "\\" ? 2 : 1;
      const lit = src.slice(i, j + 1);
      out.push({ k: "str", v: unquote(lit, line), line });
      i = j + 1;
      continue;
    }
    if (c === "`") {
      const j = src.indexOf("`", i + 1);
      const lit = src.slice(i, j + 1);
      out.push({ k: "str", v: unquote(lit, line), line });
      line += lit.split("\n").length - 1;
      i = j + 1;
      continue;
    }
    if (c === "|") {
      out.push({ k: "pipe", v: c, line });
      i++;
      continue;
    }
    if (c === "(") {
      out.push({ k: "lp", v: c, line });
      i++;
      continue;
    }
    if (c === ")") {
      out.push({ k: "rp", v: c, line });
      i++;
      continue;
    }
    if (c === ",") {
      out.push({ k: "comma", v: c, line });
      i++;
      continue;
    }
    if (src.startsWith(":=", i)) {
      out.push({ k: "decl", v: ":=", line });
      i += 2;
      continue;
    }
    if (c === "=") {
      out.push({ k: "assign", v: "=", line });
      i++;
      continue;
    }
    const m = /^(\$[A-Za-z0-9_]*|\.?[A-Za-z_][A-Za-z0-9_]*|\.)((?:\.[A-Za-z_][A-Za-z0-9_]*)*)/.exec(src.slice(i));
    if (m) {
      const head = m[1] as string;
      const rest = (m[2] ?? "").split(".").filter((s) => s !== "");
      if (head.startsWith("$")) out.push({ k: "var", v: head, chain: rest, line });
      else if (head.startsWith(".")) out.push({ k: "field", v: m[0], chain: head === "." ? rest : [head.slice(1), ...rest], line });
      else if (rest.length > 0) out.push({ k: "other", v: m[0], line });
      else out.push({ k: "ident", v: head, line });
      i += m[0].length;
      continue;
    }
    const o = /^[^\s|(),]+/.exec(src.slice(i));
    const v = o ? o[0] : c;
    out.push({ k: "other", v, line });
    i += v.length;
  }
  return out;
}

function parsePipeline(toks: PTok[], pos: { i: number }, line: number, stopAtParen: boolean): Pipeline {
  const decl: string[] = [];
  let assign = false;
  // Declarations: $a := / $a, $b := / $a =
  const save = pos.i;
  const vars: string[] = [];
  let p = pos.i;
  while (toks[p]?.k === "var" && (toks[p]?.chain?.length ?? 0) === 0) {
    vars.push(toks[p]?.v as string);
    p++;
    if (toks[p]?.k === "comma") {
      p++;
      continue;
    }
    break;
  }
  if (vars.length > 0 && (toks[p]?.k === "decl" || toks[p]?.k === "assign")) {
    decl.push(...vars);
    assign = true;
    pos.i = p + 1;
  } else pos.i = save;
  const cmds: Command[] = [];
  let cur: Command = { args: [], line: toks[pos.i]?.line ?? line };
  while (pos.i < toks.length) {
    const t = toks[pos.i] as PTok;
    if (t.k === "rp") {
      if (stopAtParen) break;
      throw new TemplateSyntaxError(t.line, "unexpected )");
    }
    pos.i++;
    if (t.k === "pipe") {
      if (cur.args.length === 0) throw new TemplateSyntaxError(t.line, "missing command before |");
      cmds.push(cur);
      cur = { args: [], line: t.line };
      continue;
    }
    if (t.k === "lp") {
      const inner = parsePipeline(toks, pos, t.line, true);
      if (toks[pos.i]?.k !== "rp") throw new TemplateSyntaxError(t.line, "unclosed (");
      pos.i++;
      cur.args.push({ kind: "paren", pipe: inner, line: t.line });
      continue;
    }
    if (t.k === "str") cur.args.push({ kind: "string", value: t.v, line: t.line });
    else if (t.k === "field") cur.args.push({ kind: "field", chain: t.chain ?? [], line: t.line });
    else if (t.k === "var") cur.args.push({ kind: "var", name: t.v, chain: t.chain ?? [], line: t.line });
    else if (t.k === "ident" && !["true", "false", "nil"].includes(t.v)) cur.args.push({ kind: "ident", name: t.v, line: t.line });
    else cur.args.push({ kind: "other", text: t.v, line: t.line });
  }
  if (cur.args.length > 0) cmds.push(cur);
  return { decl, assign, cmds, line };
}

function pipelineOf(src: string, line: number): Pipeline {
  const toks = tokenize(src, line);
  const pos = { i: 0 };
  const p = parsePipeline(toks, pos, line, false);
  if (p.cmds.length === 0) throw new TemplateSyntaxError(line, "missing value in action");
  return p;
}

// ---------------------------------------------------------------------------------------------
// Tree

const BLOCK = /^\s*(with|if|range|else|end|define|template|block|break|continue)\b([\s\S]*)$/;

/** Parse a template into nodes (trim markers applied, comments dropped). */
export function parseGoTemplate(src: string, left = "{{", right = "}}"): Node[] {
  const toks = lex(src, left, right);
  const root: Node[] = [];
  type Frame = { node: Extract<Node, { body: Node[] }>; inElse: boolean };
  const stack: Frame[] = [];
  const target = (): Node[] => {
    const f = stack[stack.length - 1];
    if (!f) return root;
    return f.inElse ? (f.node.elseBody as Node[]) : f.node.body;
  };
  for (const t of toks) {
    if (t.t === "text") {
      target().push({ kind: "text", text: t.text, line: t.line });
      continue;
    }
    const m = BLOCK.exec(t.inner);
    if (!m) {
      target().push({ kind: "action", pipe: pipelineOf(t.inner, t.line), line: t.line });
      continue;
    }
    const kw = m[1] as string;
    const rest = m[2] as string;
    if (kw === "with" || kw === "if" || kw === "range") {
      const node = { kind: kw, pipe: pipelineOf(rest, t.line), body: [], elseBody: null, elseLine: null, line: t.line } as Extract<Node, { body: Node[] }>;
      target().push(node);
      stack.push({ node, inElse: false });
    } else if (kw === "else") {
      const f = stack[stack.length - 1];
      if (!f || f.inElse) throw new TemplateSyntaxError(t.line, "unexpected {{else}}");
      f.node.elseBody = [];
      f.node.elseLine = t.line;
      f.inElse = true;
      if (rest.trim() !== "") {
        // `else if …` / `else with …`: a nested block that the same {{end}} closes.
        const mm = BLOCK.exec(rest);
        const kind = (mm?.[1] ?? "if") as "if" | "with" | "range";
        const node = { kind, pipe: pipelineOf(mm?.[2] ?? rest, t.line), body: [], elseBody: null, elseLine: null, line: t.line } as Extract<Node, { body: Node[] }>;
        f.node.elseBody.push(node);
        stack.pop();
        stack.push({ node: f.node, inElse: true });
        stack.push({ node, inElse: false });
        (node as { chained?: boolean }).chained = true;
      }
    } else if (kw === "end") {
      let f = stack.pop();
      if (!f) throw new TemplateSyntaxError(t.line, "unexpected {{end}}");
      while (f && (f.node as { chained?: boolean }).chained) f = stack.pop();
    } else {
      target().push({ kind: "keyword", name: kw, line: t.line });
      if (kw === "define" || kw === "block") stack.push({ node: { kind: "if", pipe: { decl: [], assign: false, cmds: [], line: t.line }, body: [], elseBody: null, elseLine: null, line: t.line }, inElse: false });
    }
  }
  const open = stack[stack.length - 1];
  if (open) throw new TemplateSyntaxError(open.node.line, `unclosed {{${open.node.kind}}}`);
  return root;
}
