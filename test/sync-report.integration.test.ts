/**
 * `sync --json` and `sync --metrics-file` end to end, in process against the Vault double: the
 * JSON document's shape and exit code on success, on a failed output, on a run that fails before
 * any output (authentication), on a dry run and on an invalid layout; the metrics file parsed
 * back, atomic (no temp left), 0644 under umask 077, written after a failed run, never holding a
 * value — and checked by the real tools: `promtool check metrics`, and node_exporter's textfile
 * collector scraped on loopback. A missing tool skips its test off CI and fails it in CI.
 */
import { execFile, spawn } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, readdir, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Tree } from "./helpers.js";
import { APP_POLICY, PKI_LEASE_RULES, baseLayout, trackedTrees } from "./helpers.js";
import { scaled } from "./support/scale.js";

const tree = trackedTrees(afterEach);
const SECRET = "CANARY-metrics-5d1c0a-secret";
const POLICY = `${APP_POLICY}${PKI_LEASE_RULES}`;

interface Summary {
  version: number;
  ok: boolean;
  exit: number;
  dryRun: boolean;
  files: Array<{ file: string; action: string; keysAdded?: string[]; keysChanged?: string[]; sizeAfter?: number; error?: { code: string; message: string } }>;
  counts: Record<string, number> | null;
  hookFailures: string[];
  requests: number | null;
  auth: string | null;
  durationSeconds: number;
  plan?: string[];
  error: { code: string; message: string } | null;
}

/** Which of two tools, wherever PATH has it (Debian names node_exporter prometheus-node-exporter). */
function findTool(...names: string[]): string | null {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    for (const n of names) if (dir && existsSync(path.join(dir, n))) return path.join(dir, n);
  }
  return null;
}
const PROMTOOL = findTool("promtool");
const NODE_EXPORTER = findTool("prometheus-node-exporter", "node_exporter");
/** Off CI a missing tool skips its test (with the reason in its name); in CI the test runs and fails. */
const needs = (tool: string | null) => (tool || process.env.CI ? it : it.skip);
const reason = (tool: string | null, pkg: string) => (tool ? "" : ` [skipped: ${pkg} not installed (apt-get install ${pkg}); required in CI]`);

/** `name{labels}` → value, from exposition text (HELP/TYPE lines checked to precede their samples). */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const typed = new Set<string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const t = /^# TYPE (\S+) (gauge|counter)$/.exec(line);
    if (t) typed.add(t[1] as string);
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    expect(typed.has(m[1] as string)).toBe(true);
    out.set(`${m[1]}${m[2] ?? ""}`, Number(m[3]));
  }
  return out;
}

async function fullTree(): Promise<Tree> {
  const t = await tree({ policy: POLICY });
  t.double.kvPut("secret", "app", { password: SECRET, user: "app" });
  t.double.mountPki("pki_int");
  t.double.addPkiRole("pki_int", "web", { allowedDomains: ["home.arpa"], allowSubdomains: true, maxTtl: 30 * 86400 });
  t.double.mountDatabase("database");
  t.double.addDbRole("database", "app", { defaultTtl: 3600, maxTtl: 7200 });
  await t.writeLayout(layout());
  return t;
}

function layout(appKeys: Record<string, string> = { DB_PASSWORD: "app.password", DB_USER: "app.user" }): Record<string, unknown> {
  return baseLayout({
    sources: { app: { type: "kv", mount: "secret", path: "app" }, db: { type: "lease", path: "database/creds/app" } },
    outputs: [
      { file: "app.env", format: "env", keys: appKeys },
      { file: 'odd "name".json', format: "json", keys: { password: "app.password" } },
      { file: "db.env", format: "env", keys: { DB_USER: "db.username", DB_PASSWORD: "db.password" } },
      { format: "pki", dir: "certs/web", mount: "pki_int", role: "web", commonName: "web.home.arpa", ttl: "72h", renewBefore: "24h" },
    ],
  });
}

const promDir = (t: Tree) => path.join(t.dir, "textfile");
const promFile = (t: Tree) => path.join(promDir(t), "vault_render.prom");

async function syncReported(t: Tree, extra: string[] = []) {
  await mkdir(promDir(t), { recursive: true });
  const r = await t.run(["sync", "--json", "--metrics-file", promFile(t), ...extra], { umask: "077" });
  for (const out of [r.stdout, r.stderr]) expect(out).not.toContain(SECRET);
  const text = existsSync(promFile(t)) ? await readFile(promFile(t), "utf8") : null;
  if (text !== null) expect(text).not.toContain(SECRET);
  return { r, summary: JSON.parse(r.stdout) as Summary, text };
}

const CERT_FILES = ["certs/web/cert.pem", "certs/web/key.pem", "certs/web/ca.pem", "certs/web/fullchain.pem"];
const ODD = 'odd "name".json';
const odd = 'file="odd \\"name\\".json"';

describe("sync --json", () => {
  it("success: one document on stdout with every file, key names, counts, requests and how the token came; exit 0", async () => {
    const t = await fullTree();
    const { r, summary } = await syncReported(t);
    expect(r.code).toBe(0);
    expect(summary).toMatchObject({ version: 1, ok: true, exit: 0, dryRun: false, hookFailures: [], auth: "login", error: null });
    expect(summary.counts).toEqual({ created: 7, updated: 0, unchanged: 0, deleted: 0, failed: 0 });
    expect(summary.files.map((f) => f.file)).toEqual(["app.env", ODD, "db.env", ...CERT_FILES]);
    expect(summary.files[0]).toMatchObject({ action: "create", keysAdded: ["DB_PASSWORD", "DB_USER"] });
    expect(summary.files[0]?.sizeAfter).toBe((await stat(path.join(t.publicDir, "app.env"))).size);
    expect(summary.requests).toBeGreaterThan(0);
    expect(summary.requests).toBe(t.double.requests.length);
    expect(summary.plan).toBeUndefined();
    // The second run: nothing changed, the token reused.
    const again = await syncReported(t);
    expect(again.r.code).toBe(0);
    expect(again.summary.counts).toMatchObject({ created: 0, unchanged: 7 });
    expect(again.summary.auth).toBe("cached");
  });

  it("a failed output: its one-line error in the document, exit 1; the key that changed is named, not its value", async () => {
    const t = await fullTree();
    expect((await syncReported(t)).r.code).toBe(0);
    t.double.kvPut("secret", "app", { password: SECRET + "-2", user: "app" });
    await t.writeLayout(layout({ DB_PASSWORD: "app.password", DB_USER: "app.user", EXTRA: "app.nope" }));
    const { r, summary } = await syncReported(t);
    expect(r.code).toBe(1);
    expect(summary).toMatchObject({ ok: false, exit: 1, error: null });
    const app = summary.files.find((f) => f.file === "app.env");
    expect(app).toMatchObject({ action: "failed", error: { code: "MISSING_KEY" } });
    expect(app?.error?.message).toMatch(/nope/);
    expect(app?.error?.message).not.toMatch(/\n/);
    expect(summary.files.find((f) => f.file === ODD)).toMatchObject({ action: "update", keysChanged: ["password"] });
    expect(summary.counts).toMatchObject({ failed: 1, updated: 1 });
  });

  it("a run that ends before any output (authentication failed): the error in the document, no files, exit 3, the one line on stderr", async () => {
    const t = await fullTree();
    await writeFile(path.join(t.agentDir, "approle", "secret_id"), "not-the-secret-id\n", { mode: 0o600 });
    const { r, summary } = await syncReported(t);
    expect(r.code).toBe(3);
    expect(summary).toMatchObject({ ok: false, exit: 3, files: [], counts: null, auth: null });
    expect(summary.error?.code).toMatch(/^AUTH|VAULT/);
    expect(r.stderr).toMatch(/^vault-render: /m);
    expect(summary.requests).toBeGreaterThan(0);
  });

  it("a dry run: the plan in the document (no plan lines around it), nothing written; --metrics-file with --dry-run is a usage error", async () => {
    const t = await fullTree();
    const r = await t.run(["sync", "--dry-run", "--json"]);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout) as Summary;
    expect(s).toMatchObject({ ok: true, dryRun: true, error: null });
    expect(s.files[0]).toMatchObject({ file: "app.env", action: "create", keysAdded: ["DB_PASSWORD", "DB_USER"] });
    expect(s.plan?.at(-1)).toMatch(/^plan: .*dry run: nothing written/);
    expect(r.stdout).not.toContain(SECRET);
    expect(existsSync(t.publicDir) ? await readdir(t.publicDir) : []).toEqual([]);
    const both = await t.run(["sync", "--dry-run", "--metrics-file", promFile(t)]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--metrics-file cannot be combined with --dry-run/);
  });

  it("an invalid layout: the document says so (exit 2) and the metrics file is left as it was", async () => {
    const t = await fullTree();
    expect((await syncReported(t)).r.code).toBe(0);
    const before = await readFile(promFile(t), "utf8");
    await writeFile(t.layoutFile, JSON.stringify({ version: 1, outputs: "nope" }));
    const { r, summary } = await syncReported(t);
    expect(r.code).toBe(2);
    expect(summary).toMatchObject({ ok: false, exit: 2, files: [], error: { code: "LAYOUT_INVALID" } });
    expect(await readFile(promFile(t), "utf8")).toBe(before);
  });
});

describe("sync --metrics-file", () => {
  it("success: every series parsed back, bytes and expiries as on disk and in Vault; 0644 under umask 077; no temp left", async () => {
    const t = await fullTree();
    const { r, text } = await syncReported(t);
    expect(r.code).toBe(0);
    const m = parseMetrics(text as string);
    expect((await stat(promFile(t))).mode & 0o777).toBe(0o644);
    expect(await readdir(promDir(t))).toEqual(["vault_render.prom"]);
    expect(m.get("vault_render_last_run_exit_code")).toBe(0);
    const last = m.get("vault_render_last_run_timestamp_seconds") as number;
    expect(m.get("vault_render_last_success_timestamp_seconds")).toBeGreaterThan(0);
    expect(m.get("vault_render_last_success_timestamp_seconds")).toBeLessThanOrEqual(last);
    expect(m.get("vault_render_run_duration_seconds")).toBeGreaterThanOrEqual(0);
    expect(m.get("vault_render_run_vault_requests")).toBe(t.double.requests.length);
    for (const f of ["app.env", "db.env", ...CERT_FILES]) {
      expect(m.get(`vault_render_output_status{file="${f}"}`)).toBe(1);
      expect(m.get(`vault_render_output_bytes{file="${f}"}`)).toBe((await stat(path.join(t.publicDir, f))).size);
    }
    // A label value with double quotes (a layout refuses backslashes), escaped as the format says.
    expect(m.get(`vault_render_output_status{${odd}}`)).toBe(1);
    const cert = new X509Certificate(await readFile(path.join(t.publicDir, "certs/web/cert.pem")));
    expect(m.get('vault_render_certificate_not_after_timestamp_seconds{dir="certs/web"}')).toBe(Date.parse(cert.validTo) / 1000);
    const lease = m.get('vault_render_lease_expiry_timestamp_seconds{source="db"}') as number;
    expect(lease - last).toBeGreaterThan(3000);
    expect(lease - last).toBeLessThanOrEqual(3600);
    expect(m.get("vault_render_token_expiry_timestamp_seconds")).toBeGreaterThan(last);
    // Nothing secret: no password from Vault, no token, no secret_id.
    const db = await readFile(path.join(t.publicDir, "db.env"), "utf8");
    const pw = /DB_PASSWORD='([^']+)'/.exec(db)?.[1] as string;
    expect(text).not.toContain(pw);
    const secretId = (await readFile(path.join(t.agentDir, "approle", "secret_id"), "utf8")).trim();
    expect(text).not.toContain(secretId);
  });

  it("a failed output: status 0 for it, 1 for the rest, exit code 1, the last success kept from the run before", async () => {
    const t = await fullTree();
    const first = parseMetrics((await syncReported(t)).text as string);
    await t.writeLayout(layout({ DB_PASSWORD: "app.password", EXTRA: "app.nope" }));
    const { r, text } = await syncReported(t);
    expect(r.code).toBe(1);
    const m = parseMetrics(text as string);
    expect(m.get('vault_render_output_status{file="app.env"}')).toBe(0);
    expect(m.get('vault_render_output_status{file="db.env"}')).toBe(1);
    // The failed file keeps its last good bytes, and the metric says how many.
    expect(m.get('vault_render_output_bytes{file="app.env"}')).toBe(first.get('vault_render_output_bytes{file="app.env"}'));
    expect(m.get("vault_render_last_run_exit_code")).toBe(1);
    expect(m.get("vault_render_last_success_timestamp_seconds")).toBe(first.get("vault_render_last_success_timestamp_seconds"));
    expect(await readdir(promDir(t))).toEqual(["vault_render.prom"]);
  });

  it("a run that fails before any output still writes its metrics: exit 3, every output 0, never a success", async () => {
    const t = await fullTree();
    await writeFile(path.join(t.agentDir, "approle", "secret_id"), "not-the-secret-id\n", { mode: 0o600 });
    const { r, text } = await syncReported(t);
    expect(r.code).toBe(3);
    const m = parseMetrics(text as string);
    expect(m.get("vault_render_last_run_exit_code")).toBe(3);
    expect(m.get("vault_render_last_success_timestamp_seconds")).toBe(0);
    expect(m.get('vault_render_output_status{file="app.env"}')).toBe(0);
    expect(m.get('vault_render_output_status{file="certs/web/cert.pem"}')).toBe(0);
    expect(m.has('vault_render_output_bytes{file="app.env"}')).toBe(false);
    expect((await stat(promFile(t))).mode & 0o777).toBe(0o644);
    expect(text).not.toContain("not-the-secret-id");
  });

  needs(PROMTOOL)(`promtool check metrics accepts the file, after a success and after a failure${reason(PROMTOOL, "prometheus")}`, async () => {
    const t = await fullTree();
    const ok = await syncReported(t);
    expect(ok.r.code).toBe(0);
    expect(await promtool(ok.text as string)).toEqual({ code: 0, output: "" });
    await t.writeLayout(layout({ EXTRA: "app.nope" }));
    const failed = await syncReported(t);
    expect(failed.r.code).toBe(1);
    expect(await promtool(failed.text as string)).toEqual({ code: 0, output: "" });
  });

  needs(NODE_EXPORTER)(`node_exporter's textfile collector serves the series on loopback${reason(NODE_EXPORTER, "prometheus-node-exporter")}`, async () => {
    const t = await fullTree();
    expect((await syncReported(t)).r.code).toBe(0);
    const port = await freePort();
    const child = spawn(NODE_EXPORTER as string, ["--collector.disable-defaults", "--collector.textfile", `--collector.textfile.directory=${promDir(t)}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    try {
      const body = await scrape(`http://127.0.0.1:${port}/metrics`, () => child.exitCode !== null);
      expect(body, stderr).toMatch(/^vault_render_output_status\{file="app\.env"\} 1$/m);
      expect(body).toMatch(/^vault_render_last_run_exit_code 0$/m);
      expect(body).toMatch(/^vault_render_certificate_not_after_timestamp_seconds\{dir="certs\/web"\} \S+$/m);
      expect(body).toContain(`vault_render_output_status{${odd}} 1`);
      // The collector read the file without an error (node_textfile_scrape_error 0).
      expect(body).toMatch(/^node_textfile_scrape_error 0$/m);
      expect(body).not.toContain(SECRET);
    } finally {
      child.kill("SIGTERM");
    }
  });
});

function promtool(text: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const p = execFile(PROMTOOL as string, ["check", "metrics"], { timeout: scaled(20_000) }, (err, stdout, stderr) => {
      if (err && typeof err.code !== "number") reject(new Error(`promtool did not run: ${err.message}`));
      else resolve({ code: typeof err?.code === "number" ? err.code : 0, output: (stdout + stderr).trim() });
    });
    p.stdin?.end(text);
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      s.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

/** GET until the exporter answers (it starts in a few ms; the budget is scaled), or it exited. */
async function scrape(url: string, exited: () => boolean): Promise<string> {
  const deadline = Date.now() + scaled(15_000);
  for (;;) {
    try {
      const res = await fetch(url);
      if (res.ok) return await res.text();
    } catch {
      // not listening yet
    }
    if (exited()) throw new Error("node_exporter exited before it served /metrics");
    if (Date.now() > deadline) throw new Error(`node_exporter did not serve ${url} in time`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
