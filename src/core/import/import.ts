/**
 * `vault-render import`: a Vault Agent or consul-template config (and its templates) → a layout.
 * Everything is decided in memory first; files are written only when nothing was refused (or with
 * --partial), and only through src/core/fs/.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { ensureParents, kindAt } from "../fs/create.js";
import { atomicWrite, FILE_MODE } from "../fs/writer.js";
import { layoutSchema } from "../layout/schema.js";
import { ExitCode, VrError } from "../support/errors.js";
import { blocks, bool, labelled, Lines, parseConfig, str } from "./config.js";
import type { Obj } from "./config.js";
import { parseGoTemplate, TemplateSyntaxError } from "./gotemplate.js";
import { translateTemplate } from "./translate.js";
import type { PkiField, SecretUse, Translation } from "./translate.js";

export interface ImportOptions {
  config: string;
  out: string;
  from?: "agent" | "consul-template" | undefined;
  partial: boolean;
  force: boolean;
}

interface ImportRefusal {
  file: string;
  line: number;
  construct: string;
  reason: string;
}

interface ImportNoteOut {
  file: string;
  line: number;
  text: string;
}

export interface ImportResult {
  layout: string | null;
  templates: string[];
  refusals: ImportRefusal[];
  notes: ImportNoteOut[];
  sources: number;
  outputs: number;
  exitCode: number;
}

const usage = (message: string, hint?: string): VrError => new VrError("USAGE", `import: ${message}`, { exit: ExitCode.Usage, ...(hint ? { hint } : {}) });

/** Source name from the Vault path as written: KV v2's data/ removed, / → -, others → _, 64 at most. */
export function sourceNameOf(p: string, kv2: boolean): string {
  let q = p.replace(/\?.*$/, "");
  if (kv2) q = q.replace(/\/data\//, "/");
  return q.replace(/\//g, "-").replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 64) || "source";
}

/** Longest common parent directory of absolute directories. */
function commonDir(dirs: string[]): string {
  const split = dirs.map((d) => path.resolve(d).split("/").filter((s) => s !== ""));
  const first = split[0] ?? [];
  let n = first.length;
  for (const s of split) {
    let k = 0;
    while (k < n && k < s.length && s[k] === first[k]) k++;
    n = k;
  }
  return "/" + first.slice(0, n).join("/");
}

const inside = (parent: string, child: string): boolean => {
  const r = path.relative(parent, child);
  return r === "" || (!r.startsWith("..") && !path.isAbsolute(r));
};

type HookSpec = { command: string | string[]; shell?: boolean; timeout?: string };

interface Stanza {
  index: number;
  line: number;
  dest: string;
  /** The template file as the config names it, or the config file for `contents`. */
  file: string;
  /** Line offset of template line 1 in `file` (0 for a separate template file). */
  lineBase: number;
  sourceFile: boolean;
  tr: Translation;
  hook: HookSpec | undefined;
  refused: boolean;
}

const PKI_ARGS = new Set(["common_name", "alt_names", "ip_sans", "ttl", "private_key_format", "format"]);

export async function runImport(o: ImportOptions): Promise<ImportResult> {
  const configFile = o.config;
  const configDir = path.dirname(path.resolve(configFile));
  const outAbs = path.resolve(o.out);
  const outDir = path.dirname(outAbs);
  let text: string;
  try {
    text = await readFile(configFile, "utf8");
  } catch (e) {
    throw usage(`cannot read ${configFile}: ${(e as NodeJS.ErrnoException).code ?? "error"}`);
  }
  let json: boolean;
  let doc: Obj;
  try {
    ({ json, doc } = await parseConfig(configFile, text));
  } catch (e) {
    if (e instanceof VrError) throw e;
    const msg = (e instanceof Error ? e.message : String(e)).split("\n")[0]?.slice(0, 300) ?? "";
    throw usage(`${configFile} does not parse: ${msg}`);
  }
  const lines = new Lines(text, json);
  const from = o.from ?? (doc.auto_auth !== undefined ? "agent" : "consul-template");

  const refusals: ImportRefusal[] = [];
  const notes: ImportNoteOut[] = [];
  const refuse = (file: string, line: number, construct: string, reason: string) => refusals.push({ file, line, construct, reason });
  const note = (file: string, line: number, t: string) => notes.push({ file, line, text: t });
  const cnote = (line: number, t: string) => note(configFile, line, t);

  // ---- vault {}
  const vault: Obj = {};
  const vb = blocks(doc.vault)[0];
  if (vb) {
    const vline = lines.blockLine("vault");
    const address = str(vb.address);
    if (address !== undefined) vault.address = address;
    const ns = str(vb.namespace);
    if (ns !== undefined) vault.namespace = ns;
    let caCert = str(vb.ca_cert);
    let serverName = str(vb.tls_server_name);
    let skip = bool(vb.tls_skip_verify);
    const ssl = blocks(vb.ssl)[0];
    if (ssl) {
      caCert ??= str(ssl.ca_cert);
      serverName ??= str(ssl.server_name);
      const verify = bool(ssl.verify);
      if (verify === false) skip = true;
      for (const k of ["cert", "key", "ca_path"]) if (ssl[k] !== undefined) cnote(lines.attrLine(k, "vault"), `vault.ssl.${k}: not translated (vault-render uses the CA bundle only)`);
    }
    if (caCert !== undefined) {
      vault.caCert = caCert;
      if (!path.isAbsolute(caCert)) cnote(lines.attrLine("ca_cert", "vault"), `ca_cert ${caCert} is relative: vault-render reads it relative to the layout file's directory`);
    }
    if (serverName !== undefined) vault.tlsServerName = serverName;
    if (skip === true) vault.skipVerify = true;
    for (const k of ["token", "renew_token", "vault_agent_token_file", "unwrap_token"]) {
      if (vb[k] !== undefined) cnote(lines.attrLine(k, "vault"), `vault.${k}: not translated (vault-render logs in with AppRole; \`vault-render init\` prints the commands to create one)`);
    }
    for (const k of ["ca_path", "client_cert", "client_key", "retry", "transport", "default_lease_duration", "lease_renewal_threshold"]) {
      if (vb[k] !== undefined) cnote(lines.attrLine(k, "vault") || vline, `vault.${k}: not translated`);
    }
  }

  // ---- auth
  let approle: Obj | null = null;
  let agentOnly: string | null = null;
  const authDefault = (line: number, why: string) => {
    approle = { roleIdFile: "approle/role_id", secretIdFile: "approle/secret_id" };
    agentOnly = path.join(outDir, "agent-only");
    cnote(line, `${why}: the layout logs in with AppRole from ${agentOnly}/approle/role_id and secret_id (\`vault-render init\` prints the commands to create them)`);
  };
  if (from === "agent") {
    const aa = blocks(doc.auto_auth);
    const aaLine = lines.blockLine("auto_auth");
    const methods = aa.flatMap((a) => labelled(a.method));
    const mline = lines.blockLine("method");
    if (methods.length !== 1) {
      refuse(configFile, methods.length === 0 ? aaLine : lines.blockLine("method", 1), "auto_auth.method", methods.length === 0 ? "no auth method: vault-render needs the approle method" : "more than one auth method: vault-render logs in with exactly one AppRole");
    } else {
      const m = methods[0] as { label: string | undefined; body: Obj };
      const cfg = Object.assign({}, ...blocks(m.body.config)) as Obj;
      const roleFile = str(cfg.role_id_file_path);
      const secretFile = str(cfg.secret_id_file_path);
      if (m.label !== "approle") refuse(configFile, mline, "auto_auth.method", `the ${m.label ?? "unnamed"} method has no equivalent: vault-render logs in with AppRole only`);
      else if (roleFile === undefined || secretFile === undefined) refuse(configFile, mline, "auto_auth.method", "approle without role_id_file_path and secret_id_file_path: vault-render reads both from files");
      else {
        const abs = (p: string, attr: string) => {
          if (path.isAbsolute(p)) return p;
          cnote(lines.attrLine(attr, "auto_auth"), `${attr} ${p} is relative: resolved against the config file's directory`);
          return path.resolve(configDir, p);
        };
        const r = abs(roleFile, "role_id_file_path");
        const s = abs(secretFile, "secret_id_file_path");
        agentOnly = commonDir([path.dirname(r), path.dirname(s)]);
        const a: Obj = {};
        const mount = str(m.body.mount_path);
        if (mount !== undefined && mount.replace(/\/+$/, "") !== "auth/approle") a.mount = mount.replace(/^auth\//, "").replace(/\/+$/, "");
        a.roleIdFile = path.relative(agentOnly, r);
        a.secretIdFile = path.relative(agentOnly, s);
        if (str(cfg.secret_id_response_wrapping_path) !== undefined) a.secretIdWrapped = true;
        const remove = bool(cfg.remove_secret_id_file_after_reading);
        a.removeSecretIdFile = remove ?? true;
        if (remove === undefined) {
          cnote(mline, "remove_secret_id_file_after_reading is unset, and Vault Agent's default is true: written as removeSecretIdFile: true (vault-render's own default is false)");
        }
        approle = a;
      }
    }
    if (approle === null) authDefault(aaLine, "auto_auth not translated");
    for (const a of aa) {
      for (const s of labelled(a.sink)) cnote(lines.blockLine("sink"), `sink ${s.label ?? ""}: not translated (vault-render keeps its token in agent-only/ and writes no sink)`.replace("sink :", "sink:"));
    }
    for (const k of ["cache", "listener", "api_proxy", "exit_after_auth", "pid_file", "env_template", "exec", "telemetry"]) {
      if (doc[k] !== undefined) cnote(lines.blockLine(k) === 1 ? lines.attrLine(k) : lines.blockLine(k), `${k}: not translated (vault-render is not a long-running agent)`);
    }
    const tc = Object.assign({}, ...blocks(doc.template_config)) as Obj;
    const iv = str(tc.static_secret_render_interval);
    if (iv !== undefined) cnote(lines.attrLine("static_secret_render_interval"), `static_secret_render_interval ${iv}: run \`vault-render watch --interval ${iv}\` or a timer`);
    for (const k of ["exit_on_retry_failure", "max_connections_per_host", "lease_renewal_threshold"]) {
      if (tc[k] !== undefined) cnote(lines.attrLine(k), `template_config.${k}: not translated (vault-render exits with a code on every run; a timer or \`watch\` retries)`);
    }
  } else {
    authDefault(1, "consul-template has no AppRole login");
    for (const k of ["consul", "wait", "max_stale", "kill_signal", "reload_signal", "log_level", "pid_file", "syslog", "deduplicate", "exec", "once", "block_query_wait", "default_delimiters"]) {
      if (doc[k] !== undefined) cnote(lines.blockLine(k) === 1 ? lines.attrLine(k) : lines.blockLine(k), `${k}: not translated (vault-render renders on each run; a timer or \`vault-render watch\` schedules runs)`);
    }
  }

  // ---- templates
  const stanzas: Stanza[] = [];
  const tblocks = blocks(doc.template);
  for (let i = 0; i < tblocks.length; i++) {
    const t = tblocks[i] as Obj;
    const line = lines.templateLine(i);
    const attrLine = (k: string) => lines.templateAttrLine(i, k);
    let dest = str(t.destination);
    if (dest === undefined) {
      refuse(configFile, line, "destination", "a template without destination writes no file");
      continue;
    }
    if (!path.isAbsolute(dest)) {
      cnote(attrLine("destination"), `destination ${dest} is relative: resolved against the config file's directory`);
      dest = path.resolve(configDir, dest);
    }
    let refused = false;
    const perms = t.perms;
    if (perms !== undefined && !["644", "0644", "420"].includes(str(perms) ?? "")) {
      refuse(configFile, attrLine("perms"), "perms", "public/ files are 0644 by design (readable by the containers that mount them)");
      refused = true;
    }
    if (bool(t.backup) === true) cnote(attrLine("backup"), "backup = true: vault-render keeps no .bak copies (it replaces files atomically)");
    if (bool(t.error_on_missing_key) !== true) {
      cnote(line, `${dest}: vault-render fails the output on a missing key where the agent would render "<no value>"`);
    }
    if (bool(t.create_dest_dirs) === false) cnote(attrLine("create_dest_dirs"), "create_dest_dirs = false: vault-render creates the directories under public/");
    for (const k of ["wait", "sandbox_path", "function_denylist", "function_blacklist", "user", "group", "uid", "gid", "source_dir", "splay"]) {
      if (t[k] !== undefined) cnote(attrLine(k), `${k}: not translated`);
    }
    // hook
    let hook: HookSpec | undefined;
    const ex = blocks(t.exec)[0];
    const cmd = t.command;
    const asHook = (c: unknown, timeout: string | undefined): HookSpec | undefined => {
      if (typeof c === "string" && c.trim() !== "") return { command: c, shell: true, ...(timeout ? { timeout } : {}) };
      if (Array.isArray(c) && c.length > 0 && c.every((x) => typeof x === "string")) return { command: c, ...(timeout ? { timeout } : {}) };
      return undefined;
    };
    if (ex) hook = asHook(ex.command, str(ex.timeout));
    else if (cmd !== undefined) hook = asHook(cmd, str(t.command_timeout));
    // template text
    const left = str(t.left_delimiter) ?? "{{";
    const right = str(t.right_delimiter) ?? "}}";
    let body: string;
    let file: string;
    let lineBase = 0;
    let sourceFile = false;
    const source = str(t.source);
    if (source !== undefined) {
      file = source;
      sourceFile = true;
      try {
        body = await readFile(path.resolve(configDir, source), "utf8");
      } catch (e) {
        throw usage(`${configFile}:${attrLine("source")}: cannot read template ${source}: ${(e as NodeJS.ErrnoException).code ?? "error"}`);
      }
    } else if (typeof t.contents === "string") {
      file = configFile;
      body = t.contents;
      lineBase = attrLine("contents") - (lines.templateAttrIsHeredoc(i, "contents") ? 0 : 1);
    } else {
      refuse(configFile, line, "template", "a template needs source or contents");
      continue;
    }
    let tr: Translation;
    try {
      tr = translateTemplate(parseGoTemplate(body, left, right));
    } catch (e) {
      if (!(e instanceof TemplateSyntaxError)) throw e;
      tr = { uses: [], shape: null, refusals: [{ line: e.line, construct: "template syntax", reason: e.message }], notes: [] };
    }
    for (const r of tr.refusals) refuse(file, r.line + lineBase, r.construct, r.reason);
    for (const n of tr.notes) note(file, n.line + lineBase, n.text);
    if (tr.refusals.length > 0) refused = true;
    stanzas.push({ index: i, line, dest, file, lineBase, sourceFile, tr, hook, refused });
  }

  // ---- sources, PKI sets, outputs
  const sources: Record<string, Obj> = {};
  const nameOfUse = (s: Stanza, u: SecretUse): string | null => {
    if (u.access === "v2") {
      const at = u.path.indexOf("/data/");
      const mount = u.path.slice(0, at);
      const rest = u.path.slice(at + 6);
      const [p, q] = rest.split("?");
      const spec: Obj = { type: "kv", mount, path: p, kvVersion: 2 };
      const ver = /(^|&)version=(\d+)/.exec(q ?? "");
      if (ver) spec.version = Number(ver[2]);
      if (mount.includes("/")) note(s.file, u.line + s.lineBase, `secret ${sourceNameOf(u.path, true)}: mount taken as "${mount}" (everything before /data/)`);
      const name = sourceNameOf(u.path, true);
      sources[name] ??= spec;
      return name;
    }
    if (u.access === "v1") {
      const name = sourceNameOf(u.path, false);
      if (u.path.includes("/creds/")) sources[name] ??= { type: "lease", path: u.path };
      else {
        const cut = u.path.indexOf("/");
        sources[name] ??= cut < 0 ? { type: "read", path: u.path } : { type: "kv", mount: u.path.slice(0, cut), path: u.path.slice(cut + 1), kvVersion: 1 };
      }
      return name;
    }
    return null;
  };

  interface PkiSet {
    key: string;
    dir: string;
    spec: Obj;
    files: Record<PkiField, string | null>;
    hooks: HookSpec[];
    order: number;
  }
  const pkiSets = new Map<string, PkiSet>();
  type Out = { order: number; dest: string; spec: Obj; hook: HookSpec | undefined; templateText?: string; stanza: Stanza } | { order: number; pki: PkiSet };
  const outs: Out[] = [];
  for (const s of stanzas) {
    if (s.refused || s.tr.shape === null) continue;
    const shape = s.tr.shape;
    if (shape.kind === "pki") {
      const u = s.tr.uses[shape.use] as SecretUse;
      const m = /^(.+)\/issue\/([^/]+)$/.exec(u.path);
      const spec: Obj = {};
      let bad: string | null = null;
      if (!m) bad = `${u.path} is not a PKI issue path (<mount>/issue/<role>)`;
      else {
        spec.mount = m[1];
        spec.role = m[2];
      }
      for (const a of u.args) {
        const eq = a.indexOf("=");
        const k = eq < 0 ? a : a.slice(0, eq);
        const v = eq < 0 ? "" : a.slice(eq + 1);
        if (!PKI_ARGS.has(k)) {
          refuse(s.file, u.line + s.lineBase, `${u.fn} argument ${k}`, "vault-render's PKI outputs take common_name, alt_names, ip_sans, ttl and private_key_format");
          bad = "";
          continue;
        }
        if (k === "common_name") spec.commonName = v;
        else if (k === "alt_names") spec.altNames = v.split(",").map((x) => x.trim()).filter((x) => x !== "");
        else if (k === "ip_sans") spec.ipSans = v.split(",").map((x) => x.trim()).filter((x) => x !== "");
        else if (k === "ttl") spec.ttl = v;
        else if (k === "private_key_format" && v === "pkcs8") spec.privateKeyFormat = "pkcs8";
        else if (k === "format" && v !== "pem") {
          refuse(s.file, u.line + s.lineBase, `${u.fn} argument format`, "vault-render writes PEM only");
          bad = "";
        }
      }
      if (bad === null && spec.commonName === undefined) bad = "a PKI issue without common_name";
      if (bad !== null) {
        if (bad !== "") refuse(s.file, u.line + s.lineBase, "pki", bad);
        continue;
      }
      const key = JSON.stringify([u.path, [...u.args].sort()]);
      const dir = path.dirname(s.dest);
      let set = pkiSets.get(key);
      if (set && set.dir !== dir) {
        refuse(configFile, s.line, "pki set", `the same certificate is issued into two directories (${set.dir} and ${dir}); vault-render writes one set per directory`);
        continue;
      }
      if (set && set.files[shape.field] !== null) {
        refuse(configFile, s.line, "pki set", `two files of the set hold the same ${shape.field}`);
        continue;
      }
      if (!set) {
        set = { key, dir, spec, files: { cert: null, key: null, ca: null, fullchain: null }, hooks: [], order: s.index };
        pkiSets.set(key, set);
        outs.push({ order: s.index, pki: set });
      }
      set.files[shape.field] = path.basename(s.dest);
      if (s.hook) set.hooks.push(s.hook);
      continue;
    }
    const names = s.tr.uses.map((u) => nameOfUse(s, u));
    const spec: Obj = { file: "" };
    if (shape.kind === "raw") {
      spec.format = "raw";
      spec.value = `${names[shape.use] as string}.${shape.key}`;
      if (shape.newline) spec.newline = true;
      outs.push({ order: s.index, dest: s.dest, spec, hook: s.hook, stanza: s });
    } else if (shape.kind === "env") {
      spec.format = "env";
      spec.dialect = "verbatim";
      spec.from = [names[shape.use] as string];
      outs.push({ order: s.index, dest: s.dest, spec, hook: s.hook, stanza: s });
    } else {
      spec.format = "template";
      // eslint-disable-next-line no-control-regex
      const t = shape.text.replace(/\u0000(\d+)\u0001([^\u0000]*)\u0000/g, (_m, u: string, k: string) => `${names[Number(u)] ?? "?"}.${k}`);
      outs.push({ order: s.index, dest: s.dest, spec, hook: s.hook, templateText: t, stanza: s });
    }
  }

  // ---- paths
  const destDirs = outs.map((x) => ("pki" in x ? x.pki.dir : path.dirname(x.dest)));
  let pub = destDirs.length > 0 ? commonDir(destDirs) : path.join(outDir, "public");
  if (outs.some((x) => "pki" in x && x.pki.dir === pub)) pub = path.dirname(pub);
  const paths: Obj = { public: pub };
  if (agentOnly !== null) paths.agentOnly = agentOnly;
  let pathsRefused = false;
  if (agentOnly !== null && (inside(pub, agentOnly) || inside(agentOnly, pub))) {
    refuse(configFile, lines.blockLine("auto_auth"), "paths", `the outputs' directory ${pub} and the AppRole files' directory ${agentOnly} overlap; vault-render keeps public/ (0644, mounted into containers) apart from agent-only/ (0700)`);
    pathsRefused = true;
  }

  // ---- hooks and outputs in order
  const hooks: Record<string, HookSpec> = {};
  const hookNames = new Map<string, string>();
  const hookName = (h: HookSpec): string => {
    const k = JSON.stringify(h);
    let n = hookNames.get(k);
    if (n === undefined) {
      n = `command-${hookNames.size + 1}`;
      hookNames.set(k, n);
      hooks[n] = h;
    }
    return n;
  };
  const outputs: Obj[] = [];
  const templateFiles: { rel: string; text: string }[] = [];
  for (const x of outs.sort((a, b) => a.order - b.order)) {
    if ("pki" in x) {
      const p = x.pki;
      const spec: Obj = { format: "pki", dir: path.relative(pub, p.dir), ...p.spec, files: p.files };
      const hs = [...new Set(p.hooks.map(hookName))];
      if (hs.length > 0) spec.hooks = hs;
      outputs.push(spec);
      continue;
    }
    const rel = path.relative(pub, x.dest);
    const spec: Obj = { ...x.spec, file: rel };
    if (x.templateText !== undefined) {
      if (x.stanza.sourceFile) {
        const t = `templates/${rel.replace(/\//g, "_")}.tmpl`;
        spec.template = t;
        templateFiles.push({ rel: t, text: x.templateText });
      } else spec.inline = x.templateText;
    }
    if (x.hook) spec.hooks = [hookName(x.hook)];
    outputs.push(spec);
  }

  const layout: Obj = { version: 1 };
  if (Object.keys(vault).length > 0) layout.vault = vault;
  layout.auth = { approle: approle ?? {} };
  layout.paths = paths;
  layout.sources = sources;
  if (Object.keys(hooks).length > 0) layout.hooks = hooks;
  layout.outputs = outputs;

  const order = (a: { file: string; line: number }, b: { file: string; line: number }) => {
    const fa = a.file === configFile ? "" : a.file;
    const fb = b.file === configFile ? "" : b.file;
    return fa === fb ? a.line - b.line : fa < fb ? -1 : 1;
  };
  refusals.sort(order);
  notes.sort(order);

  const base = { refusals, notes, sources: Object.keys(sources).length, outputs: outputs.length };
  const nothing = outputs.length === 0 || pathsRefused;
  if ((refusals.length > 0 && !o.partial) || (o.partial && nothing && refusals.length > 0)) {
    return { layout: null, templates: [], ...base, exitCode: ExitCode.Failed };
  }
  if (nothing && tblocks.length > 0) return { layout: null, templates: [], ...base, exitCode: ExitCode.Failed };

  const parsed = layoutSchema.safeParse(layout);
  if (!parsed.success) {
    throw new VrError("INTERNAL", `import: the layout produced does not validate: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  }
  // ---- write (never over an existing file without --force)
  const targets = [outAbs, ...templateFiles.map((t) => path.join(outDir, t.rel))];
  if (!o.force) {
    for (const t of targets) {
      if ((await kindAt(t)) !== null) throw usage(`${t === outAbs ? o.out : path.relative(outDir, t)} exists`, "pass --force to replace it");
    }
  }
  for (const t of templateFiles) {
    const abs = path.join(outDir, t.rel);
    await ensureParents(abs);
    await atomicWrite(abs, Buffer.from(t.text, "utf8"), FILE_MODE);
  }
  await ensureParents(outAbs);
  await atomicWrite(outAbs, Buffer.from(JSON.stringify(layout, null, 2) + "\n", "utf8"), FILE_MODE);
  return { layout: o.out, templates: templateFiles.map((t) => t.rel), ...base, exitCode: ExitCode.Ok };
}

