/**
 * One Go template → what it means in a layout: the Vault reads it makes (sources, PKI issues) and
 * the shape of the file (raw value, verbatim env file, PKI file, or a vault-render template), or
 * the constructs that have no equivalent, each with its line.
 */
import type { Command, Node, Pipeline, Term } from "./gotemplate.js";

interface Finding {
  line: number;
  construct: string;
  reason: string;
}

interface ImportNote {
  line: number;
  text: string;
}

/** A Vault read as the template spells it, and how its data is read. */
export interface SecretUse {
  path: string;
  args: string[];
  fn: "secret" | "pkiCert";
  /** "v2": .Data.data.k, "v1": .Data.k, "pki": certificate fields. */
  access: "v2" | "v1" | "pki" | "none";
  line: number;
}

export type PkiField = "cert" | "key" | "ca" | "fullchain";

type Shape =
  | { kind: "raw"; use: number; key: string; newline: boolean }
  | { kind: "env"; use: number }
  | { kind: "pki"; use: number; field: PkiField }
  | { kind: "template"; text: string };

export interface Translation {
  uses: SecretUse[];
  shape: Shape | null;
  refusals: Finding[];
  notes: ImportNote[];
}

/** A reference to a key of use #n, resolved to a source name by the caller. */
const refMarker = (use: number, key: string): string => `\u0000${use}\u0001${key}\u0000`;

const FILTERS: Record<string, string> = { base64Decode: "base64decode", base64Encode: "base64", toJSON: "json", trimSpace: "trim" };
const PKI_FIELDS: Record<string, PkiField> = { certificate: "cert", private_key: "key", issuing_ca: "ca", ca_chain: "ca" };
const PKI_CERT_FIELDS: Record<string, PkiField> = { Cert: "cert", Key: "key", CA: "ca" };

type Piece = { text: string } | { use: number; key: string; filters: string[]; line: number } | { pki: PkiField; use: number; line: number };

class Walker {
  uses: SecretUse[] = [];
  refusals: Finding[] = [];
  notes: ImportNote[] = [];
  pieces: Piece[] = [];

  refuse(line: number, construct: string, reason: string): void {
    if (!this.refusals.some((r) => r.line === line && r.construct === construct)) this.refusals.push({ line, construct, reason });
  }

  /** Functions anywhere in a pipeline that have no meaning here. */
  checkTerms(p: Pipeline, allowed: ReadonlySet<string>): void {
    for (const c of p.cmds) {
      for (const a of c.args) this.checkTerm(a, allowed);
    }
  }

  checkTerm(a: Term, allowed: ReadonlySet<string>): void {
    if (a.kind === "ident" && !allowed.has(a.name)) this.refuseFunction(a.name, a.line);
    else if (a.kind === "var") this.refuse(a.line, "variables", "Go template variables have no equivalent in vault-render templates");
    else if (a.kind === "paren") this.checkTerms(a.pipe, allowed);
  }

  refuseFunction(name: string, line: number): void {
    if (name === "writeToFile") this.refuse(line, "function writeToFile", "writeToFile writes files outside the layout's outputs; make each file its own output");
    else if (name === "secret" || name === "pkiCert") this.refuse(line, `function ${name}`, `${name} is only translated as the argument of {{ with }}`);
    else this.refuse(line, `function ${name}`, `${name} has no equivalent in vault-render (its templates only read keys of Vault sources)`);
  }

  walk(nodes: Node[], scope: number | null): void {
    for (const n of nodes) {
      switch (n.kind) {
        case "text":
          this.pieces.push({ text: n.text });
          break;
        case "keyword":
          this.refuse(n.line, n.name, `{{ ${n.name} }} has no equivalent in vault-render templates`);
          break;
        case "if":
          this.refuse(n.line, "if", "conditionals have no equivalent in vault-render templates (a missing key is an error, never a branch)");
          break;
        case "range":
          this.refuse(n.line, "range", "range is only translated in the env idiom {{ range $k, $v := .Data.data }}{{ $k }}={{ $v }}\\n{{ end }} as the whole file");
          break;
        case "with":
          this.walkWith(n, scope);
          break;
        case "action":
          this.action(n.pipe, scope, n.line);
          break;
      }
    }
  }

  walkWith(n: Extract<Node, { body: Node[] }>, scope: number | null): void {
    if (scope !== null) {
      this.refuse(n.line, "nested with", "a with inside another with has no equivalent (each output reads its sources independently)");
      return;
    }
    if (n.elseBody !== null) this.refuse(n.elseLine ?? n.line, "else", "{{ else }} has no equivalent: vault-render fails the output when a secret cannot be read");
    if (n.pipe.assign) this.refuse(n.line, "variables", "Go template variables have no equivalent in vault-render templates");
    const call = this.secretCall(n.pipe, n.line);
    if (call === null) return;
    this.uses.push(call);
    this.walk(n.body, this.uses.length - 1);
  }

  /** `secret "path" "k=v"…` or `pkiCert "path" …` as the whole pipeline, else a refusal. */
  secretCall(p: Pipeline, line: number): SecretUse | null {
    const [cmd, ...rest] = p.cmds;
    const head = cmd?.args[0];
    if (cmd === undefined || head?.kind !== "ident" || (head.name !== "secret" && head.name !== "pkiCert")) {
      if (head?.kind === "ident") this.refuseFunction(head.name, head.line);
      else this.refuse(line, "with", "with is only translated around {{ with secret \"path\" }} or {{ with pkiCert \"path\" … }}");
      this.checkTerms(p, new Set());
      return null;
    }
    if (rest.length > 0) {
      for (const r of rest) this.checkTerms({ ...p, cmds: [r] }, new Set());
      return null;
    }
    const args: string[] = [];
    for (const a of cmd.args.slice(1)) {
      if (a.kind !== "string") {
        this.checkTerm(a, new Set());
        if (a.kind !== "ident" && a.kind !== "var") this.refuse(a.line, `${head.name} argument`, "only literal string arguments can be translated");
        return null;
      }
      args.push(a.value);
    }
    const [path, ...params] = args;
    if (path === undefined) {
      this.refuse(line, `function ${head.name}`, `${head.name} needs a path`);
      return null;
    }
    return { path, args: params, fn: head.name, access: "none", line };
  }

  /** `{{ <value> [| filter]… }}` */
  action(p: Pipeline, scope: number | null, line: number): void {
    if (p.assign) {
      this.refuse(line, "variables", "Go template variables have no equivalent in vault-render templates");
      return;
    }
    const [first, ...more] = p.cmds;
    if (first === undefined) return;
    const filters: string[] = [];
    // `base64Decode .Data.data.k` is the same as `.Data.data.k | base64Decode`.
    const fnArgs = (c: Command): Term | undefined => {
      const [h, ...a] = c.args;
      if (h?.kind === "ident" && FILTERS[h.name] !== undefined && a.length === 1) {
        const inner = a[0] as Term;
        filters.push(FILTERS[h.name] as string);
        return inner;
      }
      return c.args.length === 1 ? h : undefined;
    };
    const value = fnArgs(first);
    if (value === undefined) {
      for (const a of first.args) this.checkTerm(a, new Set());
      if (!this.refusals.length) this.refuse(line, "pipeline", "only a single value with filters can be translated");
      return;
    }
    if (filters.length > 0) filters.reverse();
    for (const c of more) {
      const h = c.args[0];
      if (c.args.length === 1 && h?.kind === "ident" && FILTERS[h.name] !== undefined) filters.push(FILTERS[h.name] as string);
      else {
        for (const a of c.args) this.checkTerm(a, new Set());
        if (h?.kind !== "ident") this.refuse(c.line, "pipeline", "only filters (base64Decode, base64Encode, toJSON, trimSpace) can follow a value");
        return;
      }
    }
    if (filters.includes("json")) this.notes.push({ line, text: 'toJSON: Go escapes <, > and & as \\u003c, \\u003e, \\u0026 inside strings; vault-render\'s "json" helper writes them as they are' });
    if (value.kind === "string") {
      if (filters.length > 0) {
        this.refuse(line, "pipeline", "a filter applied to a literal has no equivalent");
        return;
      }
      this.pieces.push({ text: value.value });
      return;
    }
    if (value.kind !== "field") {
      this.checkTerm(value, new Set());
      if (value.kind === "other" || value.kind === "paren") this.refuse(line, "expression", "only keys of a secret and string literals can be translated");
      return;
    }
    if (scope === null) {
      this.refuse(line, value.chain.length === 0 ? "." : `.${value.chain.join(".")}`, "a field outside {{ with secret … }} has no equivalent");
      return;
    }
    this.field(value.chain, scope, filters, line);
  }

  field(chain: string[], scope: number, filters: string[], line: number): void {
    const use = this.uses[scope] as SecretUse;
    const name = chain.length === 0 ? "." : `.${chain.join(".")}`;
    const set = (access: SecretUse["access"]): boolean => {
      if (use.access !== "none" && use.access !== access) {
        this.refuse(line, name, "the same secret is read both as KV v2 (.Data.data) and as KV v1 (.Data)");
        return false;
      }
      use.access = access;
      return true;
    };
    const isPki = use.fn === "pkiCert" || /\/issue\//.test(use.path);
    if (isPki) {
      const f = use.fn === "pkiCert" && chain.length === 1 ? PKI_CERT_FIELDS[chain[0] as string] : chain.length === 2 && chain[0] === "Data" ? PKI_FIELDS[chain[1] as string] : undefined;
      if (f === undefined || filters.length > 0) {
        this.refuse(line, name, "a PKI file can hold the certificate, the private key or the issuing CA (.Data.certificate, .Data.private_key, .Data.issuing_ca, .Data.ca_chain, .Cert, .Key, .CA)");
        return;
      }
      if (chain[1] === "ca_chain") this.notes.push({ line, text: ".Data.ca_chain: written as vault-render's ca file (the issuing CA and its chain)" });
      set("pki");
      this.pieces.push({ pki: f, use: scope, line });
      return;
    }
    if (chain[0] !== "Data" || chain.length < 2) {
      this.refuse(line, name, `${name} has no equivalent (only keys under .Data are translated)`);
      return;
    }
    if (chain[1] === "metadata") {
      this.refuse(line, ".Data.metadata", "KV v2 metadata (versions, times) is not a key vault-render can write");
      return;
    }
    if (chain[1] === "data") {
      if (chain.length === 2) {
        this.refuse(line, ".Data.data", "the whole secret as one value has no equivalent; use its keys (or the env idiom)");
        return;
      }
      if (chain.length > 3) {
        this.refuse(line, name, "nested values inside a key have no equivalent");
        return;
      }
      if (!/\/data\//.test(use.path)) {
        this.refuse(line, name, "the path has no data/ segment, so this is not a KV v2 read");
        return;
      }
      if (set("v2")) this.pieces.push({ use: scope, key: chain[2] as string, filters, line });
      return;
    }
    if (chain.length > 2) {
      this.refuse(line, name, "nested values inside a key have no equivalent");
      return;
    }
    if (set("v1")) this.pieces.push({ use: scope, key: chain[1] as string, filters, line });
  }
}

/** The env idiom: with secret "p" { range $k, $v := .Data.data|.Data { $k "=" $v "\n" } }, nothing else. */
function envIdiom(nodes: Node[]): SecretUse | null {
  const significant = nodes.filter((n) => !(n.kind === "text" && n.text === ""));
  if (significant.length !== 1) return null;
  const w = significant[0] as Node;
  if (w.kind !== "with" || w.elseBody !== null || w.pipe.assign || w.pipe.cmds.length !== 1) return null;
  const [h, p, ...args] = w.pipe.cmds[0]?.args ?? [];
  if (h?.kind !== "ident" || h.name !== "secret" || p?.kind !== "string" || args.length > 0) return null;
  if (w.body.length !== 1) return null;
  const r = w.body[0] as Node;
  if (r.kind !== "range" || r.elseBody !== null || r.pipe.decl.length !== 2 || r.pipe.cmds.length !== 1) return null;
  const src = r.pipe.cmds[0]?.args ?? [];
  if (src.length !== 1 || src[0]?.kind !== "field") return null;
  const chain = src[0].chain.join(".");
  const v2 = chain === "Data.data";
  if (!v2 && chain !== "Data") return null;
  const [k, eq, v, nl, ...extra] = r.body;
  const isVar = (n: Node | undefined, name: string) =>
    n?.kind === "action" && !n.pipe.assign && n.pipe.cmds.length === 1 && n.pipe.cmds[0]?.args.length === 1 && n.pipe.cmds[0].args[0]?.kind === "var" && n.pipe.cmds[0].args[0].name === name && n.pipe.cmds[0].args[0].chain.length === 0;
  if (extra.length > 0 || !isVar(k, r.pipe.decl[0] as string) || !isVar(v, r.pipe.decl[1] as string)) return null;
  if (eq?.kind !== "text" || eq.text !== "=" || nl?.kind !== "text" || nl.text !== "\n") return null;
  if (v2 && !/\/data\//.test(p.value)) return null;
  return { path: p.value, args: [], fn: "secret", access: v2 ? "v2" : "v1", line: w.line };
}

/** Escape text for a vault-render template: a literal "{{" becomes {{ "{{" }}. */
function escapeText(t: string): string {
  return t.split("{{").join('{{ "{{" }}');
}

export function translateTemplate(nodes: Node[]): Translation {
  const env = envIdiom(nodes);
  if (env !== null) return { uses: [env], shape: { kind: "env", use: 0 }, refusals: [], notes: [] };
  // The idiom followed by whitespace (a template file's final newline): Go writes it after the
  // last line, an empty line that an env output does not write. Say how to get the same bytes.
  const last = nodes[nodes.length - 1];
  if (last?.kind === "text" && /^\s+$/.test(last.text) && envIdiom(nodes.slice(0, -1)) !== null) {
    const w = nodes.find((n): n is Extract<Node, { body: Node[] }> => n.kind === "with");
    const r = w?.body.find((n) => n.kind === "range");
    return {
      uses: [],
      shape: null,
      refusals: [{ line: r?.line ?? w?.line ?? 1, construct: "range", reason: "the env idiom is followed by whitespace (a final newline) that the agent writes after the last line; write the last {{ end }} as {{ end -}} to translate it" }],
      notes: [],
    };
  }
  const w = new Walker();
  w.walk(nodes, null);
  const result = (shape: Shape | null): Translation => ({ uses: w.uses, shape, refusals: w.refusals.sort((a, b) => a.line - b.line), notes: w.notes });
  if (w.refusals.length > 0) return result(null);
  const refs = w.pieces.filter((p) => !("text" in p));
  const texts = w.pieces.filter((p): p is { text: string } => "text" in p).map((p) => p.text);
  const pkis = refs.filter((p): p is Extract<Piece, { pki: PkiField }> => "pki" in p);
  if (pkis.length > 0) {
    const first = pkis[0] as Extract<Piece, { pki: PkiField }>;
    const onlyWs = texts.every((t) => /^\s*$/.test(t));
    const sameUse = pkis.every((p) => p.use === first.use);
    if (refs.length !== pkis.length || !onlyWs || !sameUse || pkis.length > 2) {
      w.refuse(first.line, "pki file", "a PKI file is translated when it holds one of the certificate, the key or the CA, or the certificate followed by the CA (fullchain)");
      return result(null);
    }
    if (pkis.length === 2) {
      if (pkis[0]?.pki !== "cert" || pkis[1]?.pki !== "ca") {
        w.refuse(first.line, "pki file", "two PKI values in one file are translated only as the certificate followed by the CA (fullchain)");
        return result(null);
      }
      return result({ kind: "pki", use: first.use, field: "fullchain" });
    }
    return result({ kind: "pki", use: first.use, field: first.pki });
  }
  // raw: one reference without filters, nothing before it, at most one "\n" after it.
  if (refs.length === 1) {
    const r = refs[0] as Extract<Piece, { key: string }>;
    const at = w.pieces.indexOf(r);
    const before = w.pieces.slice(0, at).map((p) => ("text" in p ? p.text : "")).join("");
    const after = w.pieces.slice(at + 1).map((p) => ("text" in p ? p.text : "")).join("");
    if (r.filters.length === 0 && before === "" && (after === "" || after === "\n")) return result({ kind: "raw", use: r.use, key: r.key, newline: after === "\n" });
  }
  let text = "";
  for (const p of w.pieces) {
    if ("text" in p) text += escapeText(p.text);
    else if ("key" in p) text += `{{ ${refMarker(p.use, p.key)}${p.filters.map((f) => ` | ${f}`).join("")} }}`;
  }
  return result({ kind: "template", text });
}
