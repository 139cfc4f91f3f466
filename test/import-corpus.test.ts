/**
 * The import corpus (test/fixtures/import-corpus/, format in its README.md): for every case,
 *  1. "golden sync": the hand-written layout.json and templates/ of the case, synced against the
 *     Vault double seeded from case.json, must render exactly the bytes of expected/ (this checks
 *     the goldens against the real product, independently of the importer);
 *  2. "import": `vault-render import` of the case's config (and again with --json) must exit as case.json says, print the
 *     refusals it lists (file, line, construct), write exactly layout.json and templates/, and the
 *     layout it wrote must sync to the bytes of expected/.
 * The fake host root of a case is a temp directory standing for "@ROOT@".
 */
import { X509Certificate, createPrivateKey } from "node:crypto";
import { chmod, cp, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startVaultDouble } from "../src/double/vault-double.js";
import type { VaultDouble } from "../src/double/vault-double.js";
import { ROOT, runInProcess } from "./helpers.js";

const CORPUS = path.join(ROOT, "test", "fixtures", "import-corpus");
/** Where a case's config and template sources go under the root, unless case.json says otherwise. */
const DEFAULT_CONFIG_DIR = "etc/vault-agent";
/** Where import writes the layout (and templates/ beside it). */
const OUT_DIR = "opt/vault-render";
/** Case files that are not copied to the fake host. */
const CASE_META = new Set(["case.json", "layout.json", "templates", "expected"]);

interface KvSeed {
  mount: string;
  version: 1 | 2;
  path: string;
  data: Record<string, unknown>;
}
interface CaseSpec {
  description: string;
  config: string;
  configDir?: string;
  args?: string[];
  seed?: { kv?: KvSeed[]; pki?: { mount: string; role: string; allowedDomains?: string[] }[]; database?: { path: string }[] };
  expect: { exit: 0 | 1 | 2; refusals?: { file: string; line: number; construct: string }[]; notes?: number };
}

interface PkiOutput {
  format: "pki";
  dir: string;
  commonName: string;
  altNames?: string[];
  ipSans?: string[];
  files?: Record<string, string | null>;
}
interface Layout {
  vault?: Record<string, unknown>;
  auth: { approle: { mount?: string; roleIdFile: string; secretIdFile: string; secretIdWrapped?: boolean } };
  paths: { public: string; agentOnly: string };
  hooks?: Record<string, { command: unknown; shell?: boolean; timeout?: string }>;
  outputs: ({ format: string; file?: string } & Partial<PkiOutput>)[];
}

const ROOT_POLICY = `path "*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }`;

function listCases(): string[] {
  if (!existsSync(CORPUS)) return [];
  return readdirSync(CORPUS, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(path.join(CORPUS, d.name, "case.json")))
    .map((d) => d.name)
    .sort();
}

function readCase(name: string): CaseSpec {
  return JSON.parse(readFileSync(path.join(CORPUS, name, "case.json"), "utf8")) as CaseSpec;
}

/** Every file under dir, as paths relative to it ("a/b.txt"), sorted. */
async function walk(dir: string, skip: (abs: string) => boolean = () => false): Promise<string[]> {
  const out: string[] = [];
  const go = async (rel: string): Promise<void> => {
    const abs = path.join(dir, rel);
    if (skip(abs)) return;
    let entries;
    try {
      entries = await readdir(abs, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await go(r);
      else if (!skip(path.join(dir, r))) out.push(r);
    }
  };
  await go("");
  return out.sort();
}

function sub(text: string, root: string): string {
  return text.split("@ROOT@").join(root);
}
function unsub(text: string, root: string): string {
  return text.split(root).join("@ROOT@");
}

/** One case's fake host: a temp root with the config copied in and a double seeded for it. */
class Host {
  root = "";
  double!: VaultDouble;
  constructor(
    readonly name: string,
    readonly spec: CaseSpec,
  ) {}

  get caseDir(): string {
    return path.join(CORPUS, this.name);
  }
  get configDir(): string {
    return path.join(this.root, this.spec.configDir ?? DEFAULT_CONFIG_DIR);
  }
  get configFile(): string {
    return path.join(this.configDir, this.spec.config);
  }
  get outDir(): string {
    return path.join(this.root, OUT_DIR);
  }
  get layoutFile(): string {
    return path.join(this.outDir, "vault-layout.json");
  }

  async start(): Promise<void> {
    this.root = await mkdtemp(path.join(tmpdir(), "vr-import-"));
    await mkdir(this.configDir, { recursive: true });
    for (const n of await readdir(this.caseDir)) {
      if (CASE_META.has(n)) continue;
      await cp(path.join(this.caseDir, n), path.join(this.configDir, n), { recursive: true });
    }
    for (const f of await walk(this.configDir)) {
      const abs = path.join(this.configDir, f);
      await writeFile(abs, sub(await readFile(abs, "utf8"), this.root));
    }
    await mkdir(this.outDir, { recursive: true });
    this.double = await startVaultDouble();
    const d = this.double;
    const kvMounts = new Set<string>();
    for (const s of this.spec.seed?.kv ?? []) {
      if (!kvMounts.has(s.mount)) d.mountKv(s.mount, s.version);
      kvMounts.add(s.mount);
      d.kvPut(s.mount, s.path, s.data);
    }
    const pkiMounts = new Set<string>();
    for (const p of this.spec.seed?.pki ?? []) {
      if (!pkiMounts.has(p.mount)) d.mountPki(p.mount);
      pkiMounts.add(p.mount);
      d.addPkiRole(p.mount, p.role, { allowedDomains: p.allowedDomains ?? [], allowSubdomains: true, allowBareDomains: true, allowIpSans: true, maxTtl: 30 * 86400 });
    }
    const dbMounts = new Set<string>();
    for (const db of this.spec.seed?.database ?? []) {
      const m = /^(.+)\/creds\/([^/]+)$/.exec(db.path);
      if (!m) throw new Error(`${this.name}: database seed path ${db.path} is not <mount>/creds/<role>`);
      const [, mount = "", role = ""] = m;
      if (!dbMounts.has(mount)) d.mountDatabase(mount);
      dbMounts.add(mount);
      d.addDbRole(mount, role, { defaultTtl: 3600, maxTtl: 7200 });
    }
    d.addPolicy("import-corpus", ROOT_POLICY);
  }

  async stop(): Promise<void> {
    await this.double?.close();
    if (this.root) await rm(this.root, { recursive: true, force: true });
  }

  /** The golden layout.json with @ROOT@ replaced, and its templates/ beside it, written where import would write them. */
  async writeGolden(): Promise<void> {
    await writeFile(this.layoutFile, sub(await readFile(path.join(this.caseDir, "layout.json"), "utf8"), this.root));
    const tdir = path.join(this.caseDir, "templates");
    if (existsSync(tdir)) await cp(tdir, path.join(this.outDir, "templates"), { recursive: true });
  }

  /**
   * Sync the layout at layoutFile against the double and compare everything under expected/.
   * The layout is adapted for the test host only where it cannot run as written: no `vault` block
   * (the double is plain HTTP: VAULT_ADDR points at it) and hooks replaced by `true`.
   */
  async syncAndCompare(): Promise<void> {
    const layout = JSON.parse(await readFile(this.layoutFile, "utf8")) as Layout & Record<string, unknown>;
    const runnable: Record<string, unknown> = { ...layout };
    delete runnable.vault;
    if (layout.hooks) runnable.hooks = Object.fromEntries(Object.entries(layout.hooks).map(([k, h]) => [k, { command: ["true"], ...(h.timeout ? { timeout: h.timeout } : {}) }]));
    const runFile = path.join(this.outDir, "vault-layout.sync.json");
    await writeFile(runFile, JSON.stringify(runnable, null, 2));
    await this.writeCredentials(layout);
    // The operator's public directory exists on the host (vault-render makes the subdirectories).
    await mkdir(layout.paths.public, { recursive: true, mode: 0o755 });
    const r = await runInProcess(["--layout", runFile, "sync"], { env: { VAULT_ADDR: this.double.url } });
    expect(r.stderr, "sync stderr").not.toMatch(/error|failed|refus/i);
    expect(r.code, `sync exit code; stderr:\n${r.stderr}`).toBe(0);
    await this.compareExpected(layout);
  }

  private async writeCredentials(layout: Layout): Promise<void> {
    const a = layout.auth.approle;
    const mount = a.mount ?? "approle";
    const roleName = "import-corpus";
    const { roleId } = this.double.addAppRole({ mount, roleName, policies: ["import-corpus"], tokenTtl: 3600, tokenMaxTtl: 86400 });
    const sid = this.double.generateSecretId(roleName, { mount, ...(a.secretIdWrapped ? { wrapTtl: 600 } : {}) });
    const secret = "secretId" in sid ? sid.secretId : sid.wrappingToken;
    const agentOnly = layout.paths.agentOnly;
    for (const [file, text] of [
      [a.roleIdFile, roleId],
      [a.secretIdFile, secret],
    ] as const) {
      const abs = path.resolve(agentOnly, file);
      await mkdir(path.dirname(abs), { recursive: true, mode: 0o700 });
      await writeFile(abs, text + "\n", { mode: 0o600 });
    }
    await chmod(agentOnly, 0o700);
  }

  private async compareExpected(layout: Layout): Promise<void> {
    const expDir = path.join(this.caseDir, "expected");
    const expected = existsSync(expDir) ? await walk(expDir) : [];
    const agentOnly = layout.paths.agentOnly;
    const skipped = [this.configDir, this.outDir, agentOnly];
    const rendered = await walk(this.root, (abs) => skipped.some((s) => abs === s || abs.startsWith(s + path.sep)));
    expect(rendered, "files rendered under the root (outside config, layout and agent-only dirs)").toEqual(expected);
    const pkiFiles = new Map<string, { kind: string; out: PkiOutput }>();
    for (const o of layout.outputs) {
      if (o.format !== "pki") continue;
      const out = o as PkiOutput;
      const names = { cert: "cert.pem", key: "key.pem", ca: "ca.pem", fullchain: "fullchain.pem", ...out.files };
      for (const [kind, n] of Object.entries(names)) if (n !== null) pkiFiles.set(path.resolve(layout.paths.public, out.dir, n), { kind, out });
    }
    const pkiSeen = new Map<PkiOutput, Record<string, string>>();
    for (const rel of expected) {
      const want = await readFile(path.join(expDir, rel), "utf8");
      const abs = path.join(this.root, rel);
      const got = await readFile(abs, "utf8");
      const pki = /^@@pki:(cert|key|ca|fullchain)@@\n?$/.exec(want);
      if (pki) {
        const entry = pkiFiles.get(abs);
        expect(entry?.kind, `${rel}: a PKI file of kind ${pki[1]} in the layout`).toBe(pki[1]);
        if (!entry) continue;
        const set = pkiSeen.get(entry.out) ?? {};
        set[entry.kind] = got;
        pkiSeen.set(entry.out, set);
        continue;
      }
      if (want.includes("@@")) {
        this.compareLease(rel, want, got);
        continue;
      }
      expect(got, `bytes of ${rel}`).toBe(want);
      expect((await stat(abs)).mode & 0o777, `mode of ${rel}`).toBe(0o644);
    }
    for (const [out, files] of pkiSeen) checkPki(out, files);
  }

  /** `@@field@@` stands for that field of the one lease the double issued. */
  private compareLease(rel: string, want: string, got: string): void {
    const fields: string[] = [];
    const re = new RegExp(
      "^" +
        want
          .split(/(@@[a-z_]+@@)/)
          .map((part) => {
            const f = /^@@([a-z_]+)@@$/.exec(part);
            if (!f) return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
            fields.push(f[1] ?? "");
            return "([^\\n]+?)";
          })
          .join("") +
        "$",
    );
    const m = re.exec(got);
    expect(m, `${rel} has the shape of expected/${rel}`).not.toBeNull();
    if (!m) return;
    const leases = this.double.activeLeases();
    expect(leases.length, "active leases").toBeGreaterThan(0);
    const values = Object.fromEntries(fields.map((f, i) => [f, m[i + 1] ?? ""]));
    const info = leases.map((id) => this.double.leaseInfo(id)).find((l) => l && l.username !== "" && (values.username === undefined || l.username === values.username));
    expect(info, `${rel}: a lease of user ${values.username ?? "?"}`).toBeDefined();
    if (values.username !== undefined && values.password !== undefined) expect(this.double.dbCredentialValid(values.username, values.password), `${rel}: the lease's credentials`).toBe(true);
  }
}

function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN [A-Z ]+-----[\s\S]+?-----END [A-Z ]+-----/g) ?? [];
}

function checkPki(out: PkiOutput, files: Record<string, string>): void {
  const certPem = files.cert ?? pemBlocks(files.fullchain ?? "")[0];
  expect(certPem, `${out.dir}: a certificate`).toBeDefined();
  if (!certPem) return;
  const cert = new X509Certificate(certPem);
  expect(cert.subject).toContain(`CN=${out.commonName}`);
  const sans = (cert.subjectAltName ?? "").split(", ").filter(Boolean);
  for (const n of out.altNames ?? []) expect(sans, `${out.dir}: SAN ${n}`).toContain(`DNS:${n}`);
  for (const ip of out.ipSans ?? []) expect(sans, `${out.dir}: IP SAN ${ip}`).toContain(`IP Address:${ip}`);
  if (files.key !== undefined) expect(cert.checkPrivateKey(createPrivateKey(files.key)), `${out.dir}: key matches cert`).toBe(true);
  if (files.ca !== undefined) {
    const ca = pemBlocks(files.ca);
    expect(ca.length).toBeGreaterThan(0);
    expect(cert.verify(new X509Certificate(ca[0] ?? "").publicKey), `${out.dir}: the CA signed the cert`).toBe(true);
  }
  if (files.fullchain !== undefined) {
    const chain = pemBlocks(files.fullchain);
    expect(chain.length, `${out.dir}: fullchain has the leaf and the chain`).toBeGreaterThan(1);
    expect(new X509Certificate(chain[0] ?? "").fingerprint256, `${out.dir}: fullchain starts with the leaf`).toBe(cert.fingerprint256);
    expect(cert.verify(new X509Certificate(chain[1] ?? "").publicKey), `${out.dir}: fullchain's second block signed the leaf`).toBe(true);
    if (files.ca !== undefined) expect(chain.slice(1), `${out.dir}: fullchain = cert + CA`).toEqual(pemBlocks(files.ca));
  }
}

interface Finding {
  file: string;
  line: number;
  construct: string;
}

/** The refusal lines of import's stderr (notes counted apart). */
function parseFindings(stderr: string, root: string): { refusals: Finding[]; notes: number; other: string[] } {
  const refusals: Finding[] = [];
  const other: string[] = [];
  let notes = 0;
  for (const line of stderr.split("\n")) {
    if (line === "") continue;
    const m = /^vault-render: import: (.+?):(\d+): (.+?): (.*)$/.exec(line);
    if (!m) {
      other.push(line);
      continue;
    }
    const [, file = "", ln = "0", construct = ""] = m;
    if (construct === "note") notes++;
    else refusals.push({ file: unsub(file, root), line: Number(ln), construct });
  }
  return { refusals, notes, other };
}

/** Layouts compared as parsed JSON; a `$schema` key and an empty `hooks` object are not differences. */
function normalLayout(text: string): unknown {
  const l = JSON.parse(text) as Record<string, unknown>;
  delete l.$schema;
  if (l.hooks !== undefined && Object.keys(l.hooks as object).length === 0) delete l.hooks;
  return l;
}

/** The set of (file, line, construct): the same refusal printed twice for one place counts once. */
function findingSet(list: Finding[]): Finding[] {
  const seen = new Map<string, Finding>();
  for (const f of list) seen.set(`${f.file}\0${f.line}\0${f.construct}`, { file: f.file, line: f.line, construct: f.construct });
  return [...seen.values()].sort(byPlace);
}

function byPlace(a: Finding, b: Finding): number {
  return a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || (a.construct < b.construct ? -1 : a.construct > b.construct ? 1 : 0);
}

const cases = listCases();
/** The import half runs once the importer is on this branch. */
const productHasImport = existsSync(path.join(ROOT, "src", "commands", "import.ts"));
/** The env dialect "verbatim" comes with the importer (its author adds it to the layout schema). */
const productHasVerbatim = readFileSync(path.join(ROOT, "src", "core", "layout", "schema.ts"), "utf8").includes('"verbatim"');

describe("import corpus", () => {
  it("has at least 30 cases, 10 of them refusals", () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
    expect(cases.filter((c) => (readCase(c).expect.refusals ?? []).length > 0).length).toBeGreaterThanOrEqual(10);
  });
});

for (const name of cases) {
  const spec = readCase(name);
  const hasLayout = existsSync(path.join(CORPUS, name, "layout.json"));
  const needsVerbatim = hasLayout && readFileSync(path.join(CORPUS, name, "layout.json"), "utf8").includes('"verbatim"');
  describe(`import corpus: ${name}`, () => {
    const hosts: Host[] = [];
    const newHost = async (): Promise<Host> => {
      const h = new Host(name, spec);
      hosts.push(h);
      await h.start();
      return h;
    };
    afterAll(async () => {
      for (const h of hosts) await h.stop();
    });

    if (hasLayout)
      it.runIf(productHasVerbatim || !needsVerbatim)("golden sync: layout.json and templates/ render expected/ against the double", async () => {
      expect(spec.expect.exit).toBe(0);
      const host = await newHost();
      await host.writeGolden();
      await host.syncAndCompare();
    });

    it.runIf(productHasImport)(`import: exit ${spec.expect.exit}, the refusals listed, layout.json, templates/, and its sync renders expected/`, async () => {
      const host = await newHost();
      const r = await runInProcess(["import", host.configFile, "--out", host.layoutFile, ...(spec.args ?? [])], { env: {} });
      expect(r.code, `import exit code; stderr:\n${r.stderr}`).toBe(spec.expect.exit);
      const found = parseFindings(r.stderr, host.root);
      if (spec.expect.exit !== 2) expect(found.other, "stderr lines that are neither refusals nor notes").toEqual([]);
      expect(findingSet(found.refusals), "refusals (file, line, construct)").toEqual(findingSet(spec.expect.refusals ?? []));
      if (spec.expect.notes !== undefined) expect(found.notes, "notes").toBe(spec.expect.notes);
      if (spec.expect.exit !== 2) {
        // --json tells the same story on stdout, and stderr stays quiet.
        const jsonOut = path.join(host.outDir, "json", "vault-layout.json");
        await mkdir(path.dirname(jsonOut), { recursive: true });
        const j = await runInProcess(["import", host.configFile, "--out", jsonOut, "--json", ...(spec.args ?? [])], { env: {} });
        expect(j.code, "import --json exit code").toBe(spec.expect.exit);
        expect(j.stderr, "import --json stderr").toBe("");
        const doc = JSON.parse(j.stdout) as { layout: string | null; refusals: Finding[]; notes: unknown[]; exitCode: number };
        expect(doc.exitCode).toBe(spec.expect.exit);
        expect(doc.layout === null ? null : path.resolve(doc.layout), "--json layout").toBe(hasLayout ? jsonOut : null);
        expect(findingSet(doc.refusals.map((f) => ({ ...f, file: unsub(f.file, host.root) }))), "--json refusals").toEqual(findingSet(found.refusals));
        expect(doc.notes.length, "--json notes").toBe(found.notes);
      }
      const tdir = path.join(host.outDir, "templates");
      if (!hasLayout) {
        expect(existsSync(host.layoutFile), "no layout written").toBe(false);
        expect(existsSync(tdir), "no templates written").toBe(false);
        return;
      }
      const golden = sub(await readFile(path.join(host.caseDir, "layout.json"), "utf8"), host.root);
      expect(normalLayout(await readFile(host.layoutFile, "utf8")), "layout.json").toEqual(normalLayout(golden));
      const wantT = path.join(host.caseDir, "templates");
      const want = existsSync(wantT) ? await walk(wantT) : [];
      expect(existsSync(tdir) ? await walk(tdir) : [], "templates/ files").toEqual(want);
      for (const t of want) expect(await readFile(path.join(tdir, t), "utf8"), `bytes of templates/${t}`).toBe(await readFile(path.join(wantT, t), "utf8"));
      await host.syncAndCompare();
    });
  });
}
