/**
 * Vault ACL policies for the test double: an HCL-subset parser and Vault's path-matching rules.
 *
 * Supported policy syntax:
 *   # comment, // comment, /* block comment *\/
 *   path "secret/data/app/*" { capabilities = ["read", "list"] }
 *   path "secret/+/team/*"   { capabilities = ["deny"] }
 *   path "kv1/x" { policy = "read" }          // legacy shorthand (read|write|deny|sudo)
 * Other keys inside a block (allowed_parameters, min_wrapping_ttl, ...) are parsed and ignored.
 *
 * Matching follows Vault's `acl.go`:
 *  1. an exact rule (no `*` and no `+`) wins; for list requests the path is also tried without
 *     its trailing `/`;
 *  2. otherwise the candidates are the longest matching prefix glob (`foo/*`) and every matching
 *     `+` segment-wildcard rule, ranked by Vault's priority rules (the first `+`/`*` later in the
 *     path wins; a non-glob beats a glob; fewer `+` wins; longer wins; lexicographically larger wins).
 * Rules for the same path from several policies are merged; `deny` on a merged rule wins.
 */

const CAPABILITIES = ["create", "read", "update", "patch", "delete", "list", "sudo", "deny"] as const;
export type Capability = (typeof CAPABILITIES)[number];

interface PolicyRule {
  path: string;
  capabilities: Capability[];
}

export interface Policy {
  name: string;
  rules: PolicyRule[];
}

class PolicyParseError extends Error {}

// ---------------------------------------------------------------------------------------------
// Tokenizer and parser for the HCL subset

type Tok =
  | { t: "str"; v: string }
  | { t: "ident"; v: string }
  | { t: "num"; v: number }
  | { t: "punct"; v: "{" | "}" | "[" | "]" | "=" | "," | ":" };

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i] as string;
    if (c === " " || c === "\t" || c === "\r" || c === "\n" || c === ";") {
      i++;
    } else if (c === "#" || (c === "/" && src[i + 1] === "/")) {
      while (i < src.length && src[i] !== "\n") i++;
    } else if (c === "/" && src[i + 1] === "*") {
      const end = src.indexOf("*/", i + 2);
      if (end < 0) throw new PolicyParseError("unterminated block comment");
      i = end + 2;
    } else if (c === '"') {
      let v = "";
      i++;
      for (;;) {
        if (i >= src.length) throw new PolicyParseError("unterminated string");
        const d = src[i] as string;
        if (d === '"') {
          i++;
          break;
        }
        if (d === "\\") {
          const e = src[i + 1];
          if (e === "n") v += "\n";
          else if (e === "t") v += "\t";
          else if (e === undefined) throw new PolicyParseError("unterminated string");
          else v += e;
          i += 2;
          continue;
        }
        v += d;
        i++;
      }
      out.push({ t: "str", v });
    } else if ("{}[]=,:".includes(c)) {
      out.push({ t: "punct", v: c as "{" });
      i++;
    } else if (/[0-9-]/.test(c)) {
      const m = /^-?[0-9]+(\.[0-9]+)?/.exec(src.slice(i));
      if (!m) throw new PolicyParseError(`unexpected character ${JSON.stringify(c)}`);
      out.push({ t: "num", v: Number(m[0]) });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_.-]*/.exec(src.slice(i)) as RegExpExecArray;
      out.push({ t: "ident", v: m[0] });
      i += m[0].length;
    } else {
      throw new PolicyParseError(`unexpected character ${JSON.stringify(c)}`);
    }
  }
  return out;
}

type Value = string | number | boolean | Value[] | { [k: string]: Value };

class Parser {
  private pos = 0;
  constructor(private readonly toks: Tok[]) {}

  eof(): boolean {
    return this.pos >= this.toks.length;
  }
  peek(): Tok | undefined {
    return this.toks[this.pos];
  }
  next(): Tok {
    const t = this.toks[this.pos++];
    if (!t) throw new PolicyParseError("unexpected end of policy");
    return t;
  }
  expectPunct(v: string): void {
    const t = this.next();
    if (t.t !== "punct" || t.v !== v) throw new PolicyParseError(`expected ${JSON.stringify(v)}`);
  }
  isPunct(v: string): boolean {
    const t = this.peek();
    return t !== undefined && t.t === "punct" && t.v === v;
  }

  /** Body of a `{ ... }` block, after the opening brace has been consumed. */
  block(): Record<string, Value> {
    const obj: Record<string, Value> = {};
    for (;;) {
      if (this.isPunct("}")) {
        this.pos++;
        return obj;
      }
      const key = this.next();
      if (key.t !== "ident" && key.t !== "str") throw new PolicyParseError("expected a key");
      if (this.isPunct("=") || this.isPunct(":")) this.pos++;
      obj[key.v] = this.value();
      if (this.isPunct(",")) this.pos++;
    }
  }

  value(): Value {
    const t = this.next();
    if (t.t === "str" || t.t === "num") return t.v;
    if (t.t === "ident") {
      if (t.v === "true") return true;
      if (t.v === "false") return false;
      return t.v;
    }
    if (t.v === "[") {
      const arr: Value[] = [];
      for (;;) {
        if (this.isPunct("]")) {
          this.pos++;
          return arr;
        }
        arr.push(this.value());
        if (this.isPunct(",")) this.pos++;
      }
    }
    if (t.v === "{") return this.block();
    throw new PolicyParseError(`unexpected ${JSON.stringify(t.v)}`);
  }
}

const LEGACY_POLICY: Record<string, Capability[]> = {
  deny: ["deny"],
  read: ["read", "list"],
  write: ["create", "read", "update", "patch", "delete", "list"],
  sudo: ["create", "read", "update", "patch", "delete", "list", "sudo"],
};

/** Parses a policy document. Throws PolicyParseError on syntax errors or unknown capabilities. */
export function parsePolicy(name: string, hcl: string): Policy {
  const p = new Parser(tokenize(hcl));
  const rules: PolicyRule[] = [];
  while (!p.eof()) {
    const kw = p.next();
    if (kw.t !== "ident") throw new PolicyParseError("expected a top-level keyword");
    if (kw.v === "path") {
      const pathTok = p.next();
      if (pathTok.t !== "str") throw new PolicyParseError("expected a quoted path after 'path'");
      if (p.isPunct("=")) p.expectPunct("=");
      p.expectPunct("{");
      const body = p.block();
      const caps = new Set<Capability>();
      const rawCaps = body["capabilities"];
      if (rawCaps !== undefined) {
        if (!Array.isArray(rawCaps)) throw new PolicyParseError("capabilities must be a list");
        for (const c of rawCaps) {
          // An HCL scalar (string, number, bool) as its text; a nested value never matches a capability.
          const s = (typeof c === "object" && c !== null ? JSON.stringify(c) : String(c)).toLowerCase();
          if (!(CAPABILITIES as readonly string[]).includes(s)) {
            throw new PolicyParseError(`invalid capability ${JSON.stringify(s)}`);
          }
          caps.add(s as Capability);
        }
      }
      const legacy = body["policy"];
      if (typeof legacy === "string") {
        const mapped = LEGACY_POLICY[legacy.toLowerCase()];
        if (!mapped) throw new PolicyParseError(`invalid policy ${JSON.stringify(legacy)}`);
        for (const c of mapped) caps.add(c);
      }
      let path = pathTok.v.replace(/^\/+/, "");
      if (path.includes("*") && path.indexOf("*") !== path.length - 1) {
        throw new PolicyParseError(`path ${JSON.stringify(path)}: '*' is only allowed at the end`);
      }
      path = path.trim();
      rules.push({ path, capabilities: [...caps] });
    } else {
      // Any other top-level stanza (e.g. name = "x") is consumed and ignored.
      if (p.isPunct("=")) p.expectPunct("=");
      if (p.isPunct("{")) {
        p.expectPunct("{");
        p.block();
      } else {
        p.value();
      }
    }
  }
  return { name, rules };
}

// ---------------------------------------------------------------------------------------------
// Matching

interface WcCandidate {
  firstWcOrGlob: number;
  wcPath: string;
  isPrefix: boolean;
  wildcards: number;
  caps: Set<Capability>;
}

/** Vault's priority ordering: returns true when `a` has LOWER priority than `b`. */
function lowerPriority(a: WcCandidate, b: WcCandidate): boolean {
  if (a.firstWcOrGlob !== b.firstWcOrGlob) return a.firstWcOrGlob < b.firstWcOrGlob;
  if (a.isPrefix !== b.isPrefix) return a.isPrefix;
  if (a.wildcards !== b.wildcards) return a.wildcards > b.wildcards;
  if (a.wcPath.length !== b.wcPath.length) return a.wcPath.length < b.wcPath.length;
  return a.wcPath < b.wcPath;
}

function effective(caps: Set<Capability>): Set<Capability> {
  return caps.has("deny") ? new Set<Capability>(["deny"]) : caps;
}

export class Acl {
  private readonly exact = new Map<string, Set<Capability>>();
  /** keyed by the prefix (without the trailing `*`) */
  private readonly prefix = new Map<string, Set<Capability>>();
  /** keyed by the full rule path (may end with `*`) */
  private readonly segment = new Map<string, Set<Capability>>();

  constructor(policies: readonly Policy[]) {
    for (const pol of policies) {
      for (const rule of pol.rules) {
        let target: Map<string, Set<Capability>>;
        let key = rule.path;
        if (key.includes("+")) target = this.segment;
        else if (key.endsWith("*")) {
          target = this.prefix;
          key = key.slice(0, -1);
        } else target = this.exact;
        const cur = target.get(key) ?? new Set<Capability>();
        for (const c of rule.capabilities) cur.add(c);
        target.set(key, cur);
      }
    }
    for (const m of [this.exact, this.prefix, this.segment]) {
      for (const [k, v] of m) m.set(k, effective(v));
    }
  }

  /** The capabilities the ACL grants on `path` (empty set = no matching rule). */
  capabilities(path: string, isList = false): Set<Capability> {
    const ex = this.exact.get(path);
    if (ex) return ex;
    if (isList && path.endsWith("/")) {
      const ex2 = this.exact.get(path.slice(0, -1));
      if (ex2) return ex2;
    }
    return this.nonExact(path) ?? new Set();
  }

  private nonExact(path: string): Set<Capability> | undefined {
    const cands: WcCandidate[] = [];
    let best: string | undefined;
    for (const p of this.prefix.keys()) {
      if (path.startsWith(p) && (best === undefined || p.length > best.length)) best = p;
    }
    if (best !== undefined) {
      const caps = this.prefix.get(best) as Set<Capability>;
      if (this.segment.size === 0) return caps;
      cands.push({ firstWcOrGlob: best.length, wcPath: best, isPrefix: true, wildcards: 0, caps });
    }
    const parts = path.split("/");
    outer: for (const [full, caps] of this.segment) {
      const cand: WcCandidate = { firstWcOrGlob: full.indexOf("+"), wcPath: full, isPrefix: false, wildcards: 0, caps };
      let cur = full;
      if (cur.endsWith("*")) {
        cand.isPrefix = true;
        cur = cur.slice(0, -1);
      }
      cand.wcPath = cur;
      const split = cur.split("/");
      if (split.length > parts.length) continue;
      if (!cand.isPrefix && split.length !== parts.length) continue;
      for (let i = 0; i < split.length; i++) {
        const a = split[i] as string;
        const p = parts[i] as string;
        if (a === "+") cand.wildcards++;
        else if (a === p) continue;
        else if (cand.isPrefix && i === split.length - 1 && p.startsWith(a)) continue;
        else continue outer;
      }
      cands.push(cand);
    }
    if (cands.length === 0) return undefined;
    let top = cands[0] as WcCandidate;
    for (const c of cands.slice(1)) if (lowerPriority(top, c)) top = c;
    return top.caps;
  }

  /** True when the capability (or, for create/update, as given) is granted and not denied. */
  allows(path: string, cap: Capability, isList = false): boolean {
    const caps = this.capabilities(path, isList);
    return !caps.has("deny") && caps.has(cap);
  }

  /**
   * Vault's `hasMountAccess` for the KV preflight: does the ACL grant any non-deny capability on
   * the mount path itself or on some path inside it (`mountPath` ends with `/`)?
   */
  hasAnyAccessUnder(mountPath: string): boolean {
    const usable = (c: Set<Capability>): boolean => c.size > 0 && !c.has("deny");
    if (usable(this.capabilities(mountPath))) return true;
    for (const [p, c] of this.exact) if (p.startsWith(mountPath) && usable(c)) return true;
    for (const [p, c] of this.prefix) if (p.startsWith(mountPath) && usable(c)) return true;
    const mparts = mountPath.replace(/\/$/, "").split("/");
    for (const [full, c] of this.segment) {
      if (!usable(c)) continue;
      const parts = full.replace(/\*$/, "").split("/");
      if (parts.length <= mparts.length) continue; // must reach inside the mount
      let ok = true;
      for (let i = 0; i < mparts.length; i++) {
        const a = parts[i] as string;
        if (a !== "+" && a !== mparts[i]) {
          ok = false;
          break;
        }
      }
      if (ok) return true;
    }
    return false;
  }
}
