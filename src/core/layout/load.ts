/**
 * Layout loading: JSON parse, zod validation, semantic checks and resolution of paths and
 * environment overrides into one `ResolvedLayout`. Validation is pure (`validateLayout`);
 * `loadLayout` only adds the file read.
 */
import { createHash } from "node:crypto";
import { closeSync, constants, fstatSync, openSync, readFileSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type * as z from "../support/zod.js";
import { ExitCode, VrError } from "../support/errors.js";
import { checkOutputPath } from "../fs/paths.js";
import { tryWritePrivateSync } from "../fs/private.js";
import { parseDuration } from "../support/duration.js";
import { checkTreesSeparate } from "./overlap.js";
import { hookSchema, layoutSchema, outputSchema, sourceSchema } from "./schema.js";
import { checkEnvKey } from "../render/dotenv.js";
import { isPki, outputFiles, pkiFiles } from "./outputs.js";
import { validateIssues } from "./validator.js";
import type { HookSpec, Layout, OutputSpec, SourceSpec } from "./schema.js";
import { cutText } from "../support/redact.js";
import { closest } from "../support/closest.js";
import { errnoOf, errnoText, readErrorStep } from "../support/errno.js";

export interface LayoutIssue {
  /** JSON path such as `$.outputs[2].file`. */
  path: string;
  message: string;
}

export interface VaultConnection {
  address: string;
  namespace: string | undefined;
  caCertFile: string | undefined;
  tlsServerName: string | undefined;
  skipVerify: boolean;
  timeoutMs: number;
  retries: number;
  concurrency: number;
}

export interface ResolvedLayout {
  file: string;
  /** The layout's text (public: used to tell the redactor what is not secret). */
  text: string;
  dir: string;
  raw: Layout;
  vault: VaultConnection;
  approle: {
    mount: string;
    roleIdFile: string;
    secretIdFile: string;
    secretIdWrapped: boolean;
    removeSecretIdFile: boolean;
    roleName: string | undefined;
    revokeOldSecretId: boolean;
  };
  publicDir: string;
  agentDir: string;
  sources: Map<string, SourceSpec>;
  outputs: OutputSpec[];
}

function jsonPath(p: ReadonlyArray<PropertyKey>): string {
  let out = "$";
  for (const seg of p) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (typeof seg === "string" && /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(seg)) out += `.${seg}`;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

interface SchemaDef {
  type: string;
  shape?: Record<string, { _zod: { def: SchemaDef; values?: ReadonlySet<unknown> } }>;
  innerType?: Walkable;
  in?: Walkable;
  element?: Walkable;
  valueType?: Walkable;
  options?: Walkable[];
  discriminator?: string;
  getter?: () => Walkable;
}
interface Walkable {
  _zod: { def: SchemaDef; values?: ReadonlySet<unknown> };
}

/**
 * The field names the schema allows for the object at `at` in `doc` (for "did you mean"): walks
 * the schema along the path, through wrappers, arrays and records; of a union it takes the object
 * options that fit the document (the one its discriminator names, or those holding every field it
 * has that is not unknown).
 */
function knownKeysAt(schema: Walkable, at: ReadonlyArray<PropertyKey>, doc: unknown, unknown: readonly string[]): string[] {
  const objects = (sc: Walkable, value: unknown, depth: number): Walkable[] => {
    let cur = sc;
    for (let n = 0; n < 20; n++) {
      const d = cur._zod.def;
      const next = d.innerType ?? (d.type === "pipe" ? d.in : undefined) ?? (d.type === "lazy" ? d.getter?.() : undefined);
      if (!next) break;
      cur = next;
    }
    const d = cur._zod.def;
    if (d.type === "union" && d.options) return d.options.flatMap((o) => objects(o, value, depth));
    if (depth < at.length) {
      const seg = at[depth];
      const child = isRecord(value) || Array.isArray(value) ? (value as Record<PropertyKey, unknown>)[seg as string] : undefined;
      if (d.type === "object" && typeof seg === "string" && d.shape?.[seg]) return objects(d.shape[seg], child, depth + 1);
      if (d.type === "array" && typeof seg === "number" && d.element) return objects(d.element, child, depth + 1);
      if (d.type === "record" && d.valueType) return objects(d.valueType, child, depth + 1);
      return [];
    }
    return d.type === "object" ? [cur] : [];
  };
  const target: unknown = at.reduce<unknown>((v, seg) => (isRecord(v) || Array.isArray(v) ? (v as Record<PropertyKey, unknown>)[seg as string] : undefined), doc);
  const present = isRecord(target) ? Object.keys(target).filter((k) => !unknown.includes(k)) : [];
  let fits = objects(schema, doc, 0);
  const shapeOf = (o: Walkable) => o._zod.def.shape ?? {};
  const byTag = fits.filter((o) =>
    Object.entries(shapeOf(o)).some(([k, f]) => f._zod.def.type === "literal" && isRecord(target) && f._zod.values?.has(target[k])),
  );
  if (fits.length > 1 && byTag.length) fits = byTag;
  else if (fits.length > 1) fits = fits.filter((o) => present.every((k) => k in shapeOf(o)));
  return [...new Set(fits.flatMap((o) => Object.keys(shapeOf(o))))].filter((k) => !present.includes(k));
}

function unknownFields(issue: z.core.$ZodIssue & { code: "unrecognized_keys" }, doc: unknown): string {
  const known = knownKeysAt(layoutSchema as unknown as Walkable, issue.path, doc, issue.keys);
  const named = issue.keys.map((k) => {
    const near = closest(k, known);
    return near === undefined ? JSON.stringify(k) : `${JSON.stringify(k)} (did you mean ${JSON.stringify(near)}?)`;
  });
  return `unknown field${issue.keys.length > 1 ? "s" : ""} ${named.join(", ")}`;
}

/** zod's type names in the layout's words. */
function kindName(kind: string): string {
  const names: Record<string, string> = {
    string: "a string",
    number: "a number",
    int: "a whole number",
    boolean: "true or false",
    array: "a list",
    object: "an object",
    record: "an object of name → value",
    null: "null",
    nan: "NaN",
  };
  return names[kind.toLowerCase()] ?? kind;
}

function sizeText(issue: z.core.$ZodIssue & { code: "too_small" | "too_big" }): string {
  const small = issue.code === "too_small";
  const limit = Number(small ? (issue as { minimum: number | bigint }).minimum : (issue as { maximum: number | bigint }).maximum);
  const inclusive = issue.inclusive !== false;
  const unit = issue.origin === "string" ? "character" : issue.origin === "array" || issue.origin === "set" ? "entry" : undefined;
  if (unit === undefined) {
    if (issue.origin !== "number" && issue.origin !== "int" && issue.origin !== "bigint") return issue.message;
    return `must be ${small ? (inclusive ? "at least" : "greater than") : inclusive ? "at most" : "less than"} ${limit}`;
  }
  const n = inclusive ? limit : small ? limit + 1 : limit - 1;
  if (small && n === 1) return issue.origin === "string" ? "must not be empty" : "must not be an empty list";
  const units = n === 1 ? unit : unit === "entry" ? "entries" : `${unit}s`;
  return `must have ${small ? "at least" : "at most"} ${n} ${units}`;
}

function describeIssue(issue: z.core.$ZodIssue, doc: unknown): string {
  switch (issue.code) {
    case "invalid_type": {
      // A schema's own words (a duration says what one looks like) win over the generic ones.
      if (!/^Invalid input: expected /.test(issue.message)) return issue.message;
      const got = / received (\S+)$/.exec(issue.message)?.[1] ?? "";
      if (got === "undefined") return `required (${kindName(issue.expected)})`;
      if (issue.expected === "int" && got === "number") return "must be a whole number";
      return `must be ${kindName(issue.expected)}, not ${kindName(got)}`;
    }
    case "too_small":
    case "too_big":
      return sizeText(issue);
    case "unrecognized_keys":
      return unknownFields(issue, doc);
    case "invalid_value":
      if (issue.values.length === 1) return `must be ${JSON.stringify(issue.values[0])}`;
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "invalid_union":
      if ("discriminator" in issue && issue.discriminator !== undefined) {
        const opts = (issue as { options?: unknown[] }).options ?? [];
        return `expected one of ${opts.map((v) => JSON.stringify(v)).join(", ")}`;
      }
      return issue.message;
    case "invalid_format":
      return issue.format === "url" ? "expected an http:// or https:// URL" : issue.message;
    default:
      return issue.message;
  }
}

/** A copy without a prototype, so names such as "constructor" or "toString" are only what they are. */
function nullProto<T>(rec: Record<string, T>): Record<string, T> {
  const out = Object.create(null) as Record<string, T>;
  for (const k of Object.keys(rec)) out[k] = rec[k] as T;
  return out;
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** What the semantic checks look at: the parts of the document that are valid on their own. */
interface Checkable {
  /** Every source / hook name the document declares (valid or not: an invalid one is not "unknown"). */
  sourceNames: ReadonlySet<string>;
  hookNames: ReadonlySet<string>;
  sources: Array<[string, SourceSpec]>;
  hooks: Array<[string, HookSpec]>;
  /** By index; undefined where the output itself is invalid. */
  outputs: Array<OutputSpec | undefined>;
  approle: Partial<Record<"roleIdFile" | "secretIdFile", string>>;
}

/**
 * `__proto__` cannot be a name in a layout: JSON.parse makes it an own key, but every copy into a
 * plain object turns it into a prototype, so it would silently vanish.
 */
function reservedNames(doc: unknown): LayoutIssue[] {
  const issues: LayoutIssue[] = [];
  if (!isRecord(doc)) return issues;
  const check = (rec: unknown, at: Array<string | number>) => {
    if (isRecord(rec) && Object.hasOwn(rec, "__proto__")) issues.push({ path: jsonPath([...at, "__proto__"]), message: '"__proto__" is a reserved name' });
  };
  check(doc.sources, ["sources"]);
  check(doc.hooks, ["hooks"]);
  if (Array.isArray(doc.outputs)) doc.outputs.forEach((o, i) => isRecord(o) && check(o.keys, ["outputs", i, "keys"]));
  return issues;
}

/** The pieces of a document that fails the schema which still validate alone, for the semantic checks. */
function checkableParts(doc: unknown): Checkable {
  const d = isRecord(doc) ? doc : {};
  const rawSources = isRecord(d.sources) ? d.sources : {};
  const rawHooks = isRecord(d.hooks) ? d.hooks : {};
  const approle = isRecord(d.auth) && isRecord(d.auth.approle) ? d.auth.approle : {};
  const valid = <T>(schema: z.ZodMiniType<T>, v: unknown): T | undefined => {
    const r = schema.safeParse(v);
    return r.success ? r.data : undefined;
  };
  const pairs = <T>(rec: Record<string, unknown>, schema: z.ZodMiniType<T>): Array<[string, T]> =>
    Object.keys(rec).flatMap((k) => {
      const v = valid(schema, rec[k]);
      return v === undefined ? [] : [[k, v] as [string, T]];
    });
  return {
    sourceNames: new Set(Object.keys(rawSources)),
    hookNames: new Set(Object.keys(rawHooks)),
    sources: pairs(rawSources, sourceSchema),
    hooks: pairs(rawHooks, hookSchema),
    outputs: Array.isArray(d.outputs) ? d.outputs.map((o) => valid(outputSchema, o)) : [],
    approle: {
      roleIdFile: typeof approle.roleIdFile === "string" && approle.roleIdFile ? approle.roleIdFile : undefined,
      secretIdFile: typeof approle.secretIdFile === "string" && approle.secretIdFile ? approle.secretIdFile : undefined,
    },
  };
}

/** Pure validation of a parsed JSON document. Returns the typed layout or the list of issues. */
export function validateLayout(doc: unknown): { layout: Layout; issues: [] } | { layout: null; issues: LayoutIssue[] } {
  const parsed = layoutSchema.safeParse(doc);
  const issues: LayoutIssue[] = [];
  let parts: Checkable;
  if (parsed.success) {
    const l = parsed.data;
    parts = {
      sourceNames: new Set(Object.keys(l.sources)),
      hookNames: new Set(Object.keys(l.hooks ?? {})),
      sources: Object.entries(l.sources),
      hooks: Object.entries(l.hooks ?? {}),
      outputs: l.outputs,
      approle: l.auth.approle,
    };
  } else {
    // Schema errors and semantic errors are reported together: the semantic checks run on every
    // part of the document that is valid on its own.
    issues.push(...parsed.error.issues.map((i) => ({ path: jsonPath(i.path), message: describeIssue(i, doc) })));
    parts = checkableParts(doc);
  }
  issues.push(...reservedNames(doc), ...semanticIssues(parts));
  if (issues.length || !parsed.success) return { layout: null, issues };
  // Records without a prototype: a hook, source or key named "constructor" is looked up as itself.
  const layout = parsed.data;
  layout.sources = nullProto(layout.sources);
  if (layout.hooks) layout.hooks = nullProto(layout.hooks);
  for (const o of layout.outputs) if ((o.format === "env" || o.format === "json") && o.keys) o.keys = nullProto(o.keys);
  return { layout, issues: [] };
}

function semanticIssues(p: Checkable): LayoutIssue[] {
  const issues: LayoutIssue[] = [];
  const seen = new Map<string, number>();
  const names = (set: ReadonlySet<string>) => [...set].join(", ") || "none";
  p.outputs.forEach((o, i) => {
    if (!o) return;
    const problem = checkOutputPath(isPki(o) ? o.dir : o.file);
    if (problem) {
      issues.push({ path: jsonPath(["outputs", i, isPki(o) ? "dir" : "file"]), message: problem });
      return;
    }
    if (isPki(o)) {
      for (const [part, rel] of Object.entries(pkiFiles(o))) {
        const name = rel.slice(path.posix.normalize(o.dir).length + 1);
        const pr = name.includes("/") ? "must be a file name, not a path" : checkOutputPath(name);
        if (pr) issues.push({ path: jsonPath(["outputs", i, "files", part]), message: pr });
      }
    }
    for (const norm of outputFiles(o)) {
      const prev = seen.get(norm);
      if (prev !== undefined && prev !== i) {
        issues.push({ path: jsonPath(["outputs", i, isPki(o) ? "dir" : "file"]), message: `duplicate output file "${norm}" (also $.outputs[${prev}])` });
      } else {
        seen.set(norm, i);
      }
    }
    // A name in an env output's own `keys` that no consumer can read is a layout error (exit 2),
    // not a per-run render failure: it can never succeed.
    if (o.format === "env") {
      for (const k of Object.keys(o.keys ?? {})) {
        const pr = checkEnvKey(k, (o.dialect ?? "portable"));
        if (pr) issues.push({ path: jsonPath(["outputs", i, "keys", k]), message: pr });
      }
    }
    for (const [where, ref] of outputRefs(o)) {
      const src = ref.split(".", 1)[0] ?? "";
      if (!p.sourceNames.has(src)) {
        issues.push({ path: jsonPath(["outputs", i, ...where]), message: `unknown source "${src}" (defined sources: ${names(p.sourceNames)})` });
      }
    }
    for (const [where, message] of validateIssues(o)) issues.push({ path: jsonPath(["outputs", i, ...where]), message });
    (o.hooks ?? []).forEach((h, j) => {
      if (!p.hookNames.has(h)) issues.push({ path: jsonPath(["outputs", i, "hooks", j]), message: `unknown hook "${h}" (defined hooks: ${names(p.hookNames)})` });
    });
  });
  for (const [name, h] of p.hooks) {
    if (h.shell && typeof h.command !== "string") issues.push({ path: jsonPath(["hooks", name, "command"]), message: 'with "shell": true the command is one string' });
    if (!h.shell && typeof h.command === "string") issues.push({ path: jsonPath(["hooks", name, "command"]), message: 'an argv array such as ["docker", "restart", "app"] (or set "shell": true)' });
  }
  for (const [name, s] of p.sources) {
    if (s.type === "kv" && s.version !== undefined && s.kvVersion === 1) {
      issues.push({ path: jsonPath(["sources", name, "version"]), message: "version pinning needs a KV v2 source" });
    }
    if (s.type === "kv" && s.generate && (s.kvVersion === 1 || s.version !== undefined)) {
      issues.push({ path: jsonPath(["sources", name, "generate"]), message: "a generator needs an unpinned KV v2 source (it writes new versions with check-and-set)" });
    }
  }
  for (const f of ["roleIdFile", "secretIdFile"] as const) {
    const file = p.approle[f];
    const problem = file === undefined ? null : checkOutputPath(file);
    if (problem) issues.push({ path: jsonPath(["auth", "approle", f]), message: `${problem} (relative to agent-only/)` });
  }
  return issues;
}

/** Every source reference an output makes, with the JSON sub-path it was found at. */
function outputRefs(o: OutputSpec): Array<[Array<string | number>, string]> {
  const refs: Array<[Array<string | number>, string]> = [];
  if (o.format === "pki") return refs;
  if (o.format === "raw") refs.push([["value"], o.value]);
  if (o.format === "env" || o.format === "json") {
    for (const [k, v] of Object.entries(o.keys ?? {})) refs.push([["keys", k], v]);
    (o.from ?? []).forEach((f, j) => refs.push([["from", j], `${typeof f === "string" ? f : f.source}.*`]));
  }
  return refs;
}

/** Strict boolean parsing like Go's strconv.ParseBool, as the official Vault CLI does. */
export function parseBoolEnv(name: string, value: string): boolean | undefined {
  if (value === "") return undefined;
  if (["1", "t", "T", "TRUE", "true", "True"].includes(value)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(value)) return false;
  throw new VrError("CONFIG_ENV", `could not parse ${name}: "${cutText(value, 20)}" is not a boolean`, {
    hint: "use true/false (or 1/0, t/f) as the official vault CLI does",
    exit: ExitCode.Usage,
  });
}

function formatIssues(file: string, issues: LayoutIssue[]): string {
  return issues.map((i) => `${file}: ${i.path}: ${i.message}`).join("\n");
}

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * How a load uses the memo of the last validated layout (`agent-only/layout.memo.json`): "read"
 * takes a memo written for exactly this text by exactly this build instead of validating again,
 * "write" also records one after a validation; without it, every load validates.
 */
export type MemoUse = "read" | "write";

export async function loadLayout(file: string, env: Env, memo?: MemoUse): Promise<ResolvedLayout> {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = await readFile(abs, "utf8");
  } catch (e) {
    const code = errnoOf(e);
    const step = code === "ENOENT" || code === "EISDIR" ? undefined : readErrorStep(e);
    throw new VrError("LAYOUT_READ", `cannot read layout ${file}: ${errnoText(code)}`, {
      hint:
        code === "EISDIR"
          ? "--layout must name the layout file, not its directory"
          : (step ?? "pass the layout with --layout or run from its directory (default ./vault-layout.json)"),
      exit: ExitCode.Usage,
    });
  }
  const v = validateText(abs, text, memo);
  const layout = resolveLayout(abs, v.layout, env, text);
  await checkTreesSeparate(abs, layout.publicDir, layout.agentDir);
  // Only once the trees are known to be apart: never a file written through a link into public/.
  if (memo === "write" && v.remember) v.remember();
  return layout;
}

export function resolveLayoutText(abs: string, text: string, env: Env): ResolvedLayout {
  return resolveLayout(abs, validateText(abs, text).layout, env, text);
}

/**
 * A JSON syntax error with its line and column: V8 names a character offset ("at position N",
 * or "(line L column C)" in newer Node), an editor wants a line and a column. Only positions and
 * V8's own words are shown, never the text around them (a layout may hold a mistyped secret).
 */
export function jsonSyntaxMessage(abs: string, text: string, v8: string): string {
  const first = v8.split("\n")[0] ?? "";
  let line: number | undefined;
  let col: number | undefined;
  const lc = /\(line (\d+) column (\d+)\)/.exec(first);
  const pos = /at position (\d+)/.exec(first);
  if (lc) {
    line = Number(lc[1]);
    col = Number(lc[2]);
  } else if (pos) {
    const at = Math.min(Number(pos[1]), text.length);
    const before = text.slice(0, at);
    line = before.split("\n").length;
    col = at - (before.lastIndexOf("\n") + 1) + 1;
  } else if (/Unexpected end of JSON input/.test(first)) {
    const lines = text.split("\n");
    line = lines.length;
    col = (lines[lines.length - 1] ?? "").length + 1;
  }
  // V8 quotes the start of the text ("\"{ nope\" is not valid JSON"): drop the quote, keep the words.
  const words = first
    .replace(/,? ?".*" is not valid JSON/, "")
    .replace(/ in JSON at position \d+.*$/, "")
    .replace(/ ?\(line \d+ column \d+\)/, "")
    .trim();
  const where = line === undefined ? "" : ` at line ${line}, column ${col}`;
  return `${abs}: $: not valid JSON${where} (${words || "syntax error"})`;
}

/** Parse and validate a layout text, or take the memo of it (with `memo`); `remember` records one. */
function validateText(abs: string, text: string, memo?: MemoUse): { layout: Layout; remember?: () => void } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new VrError("LAYOUT_INVALID", jsonSyntaxMessage(abs, text, (e as Error).message), { exit: ExitCode.Usage });
  }
  const memoFile = memo ? layoutMemoFile(abs, doc) : undefined;
  const key = memoFile ? memoKey(text) : undefined;
  const remembered = memoFile && key ? readLayoutMemo(memoFile, key, doc) : undefined;
  if (remembered) return { layout: remembered };
  const v = validateLayout(doc);
  if (!v.layout) {
    throw new VrError("LAYOUT_INVALID", formatIssues(abs, v.issues), { exit: ExitCode.Usage });
  }
  const valid = v.layout;
  return { layout: valid, remember: memoFile && key ? () => writeLayoutMemo(memoFile, key, valid) : undefined };
}

/*
 * The layout memo. Validating a layout costs ~36 µs an output with zod and the semantic checks,
 * every run, for a text that rarely changes; `status` on 1,000 outputs spent most of its time
 * there. A sync records the validated layout beside its state, keyed by the SHA-256 of the exact
 * text and by the identity of the code that validated it (this module's file: its path, size and
 * mtime, which any build or upgrade changes); a later load of the same text by the same build
 * takes it instead of validating again. A memo that does not match, does not parse or cannot be
 * read is ignored (the load validates); writing one is best effort. It lives in agent-only/ (0600,
 * never mounted into consumers), the trust domain of the token and the state.
 */
const MEMO_NAME = "layout.memo.json";

function layoutMemoFile(abs: string, doc: unknown): string | undefined {
  const paths = isRecord(doc) && isRecord(doc.paths) ? doc.paths : {};
  const agentOnly = paths.agentOnly === undefined ? "agent-only" : paths.agentOnly;
  if (typeof agentOnly !== "string" || agentOnly === "") return undefined;
  return path.join(path.resolve(path.dirname(abs), agentOnly), MEMO_NAME);
}

let codeIdentity: string | undefined;
function memoKey(text: string): string | undefined {
  if (codeIdentity === undefined) {
    try {
      const self = fileURLToPath(import.meta.url);
      const st = statSync(self);
      codeIdentity = `${self}\0${st.size}\0${st.mtimeMs}`;
    } catch {
      return undefined;
    }
  }
  return createHash("sha256").update(codeIdentity).update("\0").update(text).digest("hex");
}

function readLayoutMemo(file: string, key: string, doc: unknown): Layout | undefined {
  let fd: number | undefined;
  try {
    // Never through a link, and only a file of this user that no one else may write: the memo
    // decides what a run does (hooks included), as the layout file does.
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    const st = fstatSync(fd);
    const uid = process.getuid?.();
    if (!st.isFile() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o022) !== 0) return undefined;
    const m = JSON.parse(readFileSync(fd, "utf8")) as { key?: unknown; layout?: unknown };
    if (m.key !== key || !isRecord(m.layout)) return undefined;
    // The trees always come from the text itself, never from the memo.
    const fromText = isRecord(doc) && isRecord(doc.paths) ? doc.paths : {};
    const fromMemo = isRecord(m.layout.paths) ? m.layout.paths : {};
    if (fromText.public !== fromMemo.public || fromText.agentOnly !== fromMemo.agentOnly) return undefined;
    return m.layout as unknown as Layout;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function writeLayoutMemo(file: string, key: string, layout: Layout): void {
  tryWritePrivateSync(file, JSON.stringify({ key, layout }) + "\n");
}

function resolveLayout(abs: string, layout: Layout, env: Env, text = JSON.stringify(layout)): ResolvedLayout {
  const dir = path.dirname(abs);
  const bad = (p: string, message: string) => new VrError("LAYOUT_INVALID", `${abs}: ${p}: ${message}`, { exit: ExitCode.Usage });

  const address = (env.VAULT_ADDR || layout.vault.address || "https://127.0.0.1:8200").replace(/\/+$/, "");
  if (!/^https?:\/\/[^\s/]+/.test(address)) {
    throw new VrError("CONFIG_ENV", `Vault address "${address}" is not an http:// or https:// URL`, { exit: ExitCode.Usage });
  }
  const skipEnv = parseBoolEnv("VAULT_SKIP_VERIFY", env.VAULT_SKIP_VERIFY ?? "");
  const caCert = env.VAULT_CACERT || (layout.vault.caCert ? path.resolve(dir, layout.vault.caCert) : undefined);
  let timeoutMs = 10_000;
  if (layout.vault.timeout) timeoutMs = parseDuration(layout.vault.timeout);

  const publicDir = path.resolve(dir, layout.paths.public ?? "public");
  const agentDir = path.resolve(dir, layout.paths.agentOnly ?? "agent-only");
  const inside = (a: string, b: string) => a === b || a.startsWith(b + path.sep);
  if (inside(publicDir, agentDir) || inside(agentDir, publicDir)) {
    throw bad("$.paths", `public/ (${publicDir}) and agent-only/ (${agentDir}) must be separate: neither may be inside the other`);
  }

  const ns = env.VAULT_NAMESPACE || layout.vault.namespace || undefined;
  return {
    file: abs,
    text,
    dir,
    raw: layout,
    vault: {
      address,
      namespace: ns,
      caCertFile: caCert,
      tlsServerName: env.VAULT_TLS_SERVER_NAME || layout.vault.tlsServerName || undefined,
      skipVerify: skipEnv ?? layout.vault.skipVerify ?? false,
      timeoutMs,
      retries: layout.vault.retries ?? 2,
      concurrency: layout.vault.concurrency ?? 8,
    },
    approle: {
      mount: layout.auth.approle.mount ?? "approle",
      roleIdFile: path.join(agentDir, layout.auth.approle.roleIdFile),
      secretIdFile: path.join(agentDir, layout.auth.approle.secretIdFile),
      secretIdWrapped: layout.auth.approle.secretIdWrapped ?? false,
      removeSecretIdFile: layout.auth.approle.removeSecretIdFile ?? false,
      roleName: layout.auth.approle.roleName,
      revokeOldSecretId: layout.auth.approle.revokeOldSecretId ?? false,
    },
    publicDir,
    agentDir,
    sources: new Map(Object.entries(layout.sources)),
    outputs: layout.outputs,
  };
}
