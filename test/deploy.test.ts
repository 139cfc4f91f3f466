/**
 * deploy/: the systemd units and the container files. What can run here runs: `systemd-analyze
 * verify` of the units (required in CI, skipped with a reason elsewhere when it is missing), the
 * units' and the image's command lines as real vault-render runs against the double (sync, watch
 * with its reload and stop signals, the healthcheck fresh and stale), the umask the units set, and
 * the compose file's structure. Building or running the image needs a Docker daemon, which the
 * test machine does not have; nothing here pretends to.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, stat, symlink, writeFile, chmod, mkdir, lstat } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { KILL_GRACE_MS } from "../src/core/support/command.js";
import { BIN, ROOT, runCli, runInProcess, scaled, trackedTrees } from "./helpers.js";
import type { Tree } from "./helpers.js";

const tree = trackedTrees(afterEach);
const SYSTEMD = path.join(ROOT, "deploy", "systemd");
const DOCKER = path.join(ROOT, "deploy", "docker");
const UNITS = ["vault-render-sync.service", "vault-render-sync.timer", "vault-render-watch.service"];
const INSTALLED_BIN = "/usr/local/bin/vault-render";
const TREE_ROOT = "/srv/vault";

/** A unit file's `Key=value` lines per section (repeated keys in order). */
function parseUnit(file: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let cur: Map<string, string[]> | undefined;
  for (const raw of readFileSync(file, "utf8").split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      cur = new Map();
      sections.set(sec[1] as string, cur);
      continue;
    }
    const eq = line.indexOf("=");
    if (!cur || eq < 0) throw new Error(`${file}: not a unit line: ${line}`);
    const k = line.slice(0, eq);
    cur.set(k, [...(cur.get(k) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

function one(unit: Map<string, Map<string, string[]>>, section: string, key: string): string {
  const v = unit.get(section)?.get(key);
  if (v?.length !== 1) throw new Error(`expected one ${section}.${key}, got ${JSON.stringify(v)}`);
  return v[0] as string;
}

/** Seconds of a systemd or compose time span the files use ("120", "120s", "2min", "15min"). */
function seconds(span: string): number {
  const m = /^(\d+)\s*(s|sec|min|m)?$/.exec(span.trim());
  if (!m) throw new Error(`unexpected time span ${span}`);
  return Number(m[1]) * (m[2] === "min" || m[2] === "m" ? 60 : 1);
}

/** ExecStart's vault-render arguments, with /srv/vault moved to the test tree. */
function execArgs(unit: string, t: Tree): string[] {
  const argv = one(parseUnit(path.join(SYSTEMD, unit)), "Service", "ExecStart").split(/\s+/);
  expect(argv[0]).toBe(INSTALLED_BIN);
  return argv.slice(1).map((a) => (a === `${TREE_ROOT}/vault-layout.json` ? t.layoutFile : a));
}

const ciRequires = Boolean(process.env.CI);
const analyze = spawnSync("systemd-analyze", ["--version"], { encoding: "utf8" });
const haveAnalyze = analyze.status === 0;

describe("deploy/systemd", () => {
  const verifyTitle = "systemd-analyze verify accepts every unit with no warning (the credential drop-in merged in too)";
  it.skipIf(!haveAnalyze && !ciRequires)(haveAnalyze || ciRequires ? verifyTitle : `${verifyTitle}: skipped, systemd-analyze is not installed (CI installs it and fails without it)`, async () => {
    // CI installs systemd (.ci/run); a CI run without it fails here instead of skipping.
    expect(haveAnalyze, "systemd-analyze is missing: apt-get install systemd").toBe(true);
    const dir = await mkdtemp(path.join(tmpdir(), "vr-units-"));
    try {
      // verify insists that ExecStart's binary exists: the real bin through this node.
      const sub = (text: string) => text.replaceAll(INSTALLED_BIN, `${process.execPath} ${BIN}`);
      for (const u of UNITS) await writeFile(path.join(dir, u), sub(await readFile(path.join(SYSTEMD, u), "utf8")));
      const dropIn = await readFile(path.join(SYSTEMD, "secret-id-credential.conf"), "utf8");
      await writeFile(path.join(dir, "vault-render-watch-credential.service"), sub(await readFile(path.join(SYSTEMD, "vault-render-watch.service"), "utf8")) + "\n" + dropIn);
      const files = [...UNITS, "vault-render-watch-credential.service"].map((u) => path.join(dir, u));
      const r = spawnSync("systemd-analyze", ["verify", "--man=no", ...files], { encoding: "utf8", env: { ...process.env, SYSTEMD_LOG_COLOR: "0" } });
      expect({ status: r.status, stderr: r.stderr, stdout: r.stdout }).toEqual({ status: 0, stderr: "", stdout: "" });
      // systemd's own exposure score of the sandbox (0 = fully locked down, 10 = none); 1.7 today.
      for (const u of ["vault-render-sync.service", "vault-render-watch.service"]) {
        const sec = spawnSync("systemd-analyze", ["security", "--offline=yes", "--no-pager", path.join(dir, u)], { encoding: "utf8", env: { ...process.env, SYSTEMD_COLORS: "0" } });
        const level = /Overall exposure level for \S+: ([\d.]+)/.exec(sec.stdout + sec.stderr)?.[1];
        expect([u, Number(level)]).toEqual([u, expect.any(Number)]);
        expect(Number(level)).toBeLessThanOrEqual(2);
      }
      // The check is real: an unknown key is reported.
      await writeFile(path.join(dir, "bad.service"), "[Service]\nType=oneshot\nExecStart=/bin/true\nProtectSystem=sometimes\n");
      const bad = spawnSync("systemd-analyze", ["verify", "--man=no", path.join(dir, "bad.service")], { encoding: "utf8" });
      expect(bad.stderr).toMatch(/protect system/i);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("the timer starts the sync service every 5 minutes, spread out and catching up missed runs", () => {
    const timer = parseUnit(path.join(SYSTEMD, "vault-render-sync.timer"));
    expect(one(timer, "Timer", "Unit")).toBe("vault-render-sync.service");
    expect(one(timer, "Timer", "OnCalendar")).toBe("*:0/5");
    expect(one(timer, "Timer", "Persistent")).toBe("true");
    expect(seconds(one(timer, "Timer", "RandomizedDelaySec"))).toBeLessThan(5 * 60);
    expect(one(parseUnit(path.join(SYSTEMD, "vault-render-sync.service")), "Service", "Type")).toBe("oneshot");
  });

  it("both services share one sandbox: the tree's public/ and agent-only/ writable, the rest read-only", () => {
    const keys = ["User", "Group", "UMask", "ProtectSystem", "ReadWritePaths", "ProtectHome", "PrivateTmp", "NoNewPrivileges", "RestrictAddressFamilies", "CapabilityBoundingSet", "SystemCallFilter"];
    const [sync, watch] = ["vault-render-sync.service", "vault-render-watch.service"].map((u) => parseUnit(path.join(SYSTEMD, u)).get("Service") as Map<string, string[]>) as [Map<string, string[]>, Map<string, string[]>];
    for (const k of keys) expect([k, sync.get(k)]).toEqual([k, watch.get(k)]);
    expect(sync.get("ProtectSystem")).toEqual(["strict"]);
    expect(sync.get("NoNewPrivileges")).toEqual(["yes"]);
    expect(sync.get("PrivateTmp")).toEqual(["yes"]);
    expect(sync.get("RestrictAddressFamilies")).toEqual(["AF_UNIX AF_INET AF_INET6"]);
    // The default paths of a layout at /srv/vault/vault-layout.json (paths.public / paths.agentOnly).
    expect(sync.get("ReadWritePaths")).toEqual([`${TREE_ROOT}/public ${TREE_ROOT}/agent-only`]);
    // The sysusers entry makes the user the units name.
    const sysusers = readFileSync(path.join(SYSTEMD, "vault-render.sysusers.conf"), "utf8");
    expect(sysusers).toMatch(new RegExp(`^u ${sync.get("User")?.[0]} - `, "m"));
  });

  it("the watch unit stops within its TimeoutStopSec only if that covers a hook's timeout and both kill graces", () => {
    const watch = parseUnit(path.join(SYSTEMD, "vault-render-watch.service"));
    expect(one(watch, "Service", "Restart")).toBe("on-failure");
    expect(one(watch, "Service", "ExecReload")).toBe("/bin/kill -HUP $MAINPID");
    expect(one(watch, "Service", "KillSignal")).toBe("SIGTERM");
    expect(one(watch, "Service", "KillMode")).toBe("mixed");
    const hookBudget = 60 + (2 * KILL_GRACE_MS) / 1000;
    expect(seconds(one(watch, "Service", "TimeoutStopSec"))).toBeGreaterThan(hookBudget);
  });

  it("the sync unit's ExecStart, under the units' UMask, syncs a tree: public/ 0644/0755, agent-only/ 0600", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "pw-1" });
    await t.writeLayout({
      version: 1,
      auth: { approle: { roleIdFile: "approle/role_id", secretIdFile: "approle/secret_id" } },
      sources: { app: { type: "kv", mount: "secret", path: "app" } },
      outputs: [{ file: "app/app.env", format: "env", keys: { DB_PASSWORD: "app.password" } }],
    });
    const umask = one(parseUnit(path.join(SYSTEMD, "vault-render-sync.service")), "Service", "UMask");
    expect(umask).toBe("0077");
    const r = await runCli(execArgs("vault-render-sync.service", t), { cwd: t.dir, env: { VAULT_ADDR: t.double.url }, umask });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect((await stat(path.join(t.publicDir, "app", "app.env"))).mode & 0o7777).toBe(0o644);
    expect((await stat(path.join(t.publicDir, "app"))).mode & 0o7777).toBe(0o755);
    expect((await stat(t.publicDir)).mode & 0o7777).toBe(0o755);
    for (const f of ["state.json", "token"]) expect([f, (await stat(path.join(t.agentDir, f))).mode & 0o7777]).toEqual([f, 0o600]);
  });

  it("the credential drop-in's way works: secret_id a symlink to a 0400 file outside agent-only/ (as $CREDENTIALS_DIRECTORY holds it)", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "pw-1" });
    const creds = path.join(t.dir, "credentials");
    await mkdir(creds, { mode: 0o700 });
    const secretIdFile = path.join(t.agentDir, "approle", "secret_id");
    await writeFile(path.join(creds, "secret_id"), await readFile(secretIdFile));
    await chmod(path.join(creds, "secret_id"), 0o400);
    await rm(secretIdFile);
    await symlink(path.join(creds, "secret_id"), secretIdFile);
    const r = await t.run(["sync"]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    const check = await t.run(["check", "--offline"]);
    expect({ code: check.code, secretId: check.stdout.split("\n").filter((l) => /secret_id/.test(l) && !/\bok\b/i.test(l)) }).toEqual({ code: 0, secretId: [] });
    // Left as it was: still the link, the credential still 0400.
    expect((await lstat(secretIdFile)).isSymbolicLink()).toBe(true);
    expect((await stat(path.join(creds, "secret_id"))).mode & 0o7777).toBe(0o400);
  });
});

/** A Dockerfile's instructions (continuation lines joined), in order. */
function dockerfile(): Array<[string, string]> {
  const text = readFileSync(path.join(DOCKER, "Dockerfile"), "utf8").replace(/\\\n/g, " ");
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => {
      const sp = l.search(/\s/);
      return [l.slice(0, sp).toUpperCase(), l.slice(sp + 1).trim()] as [string, string];
    });
}

function lastOf(ins: Array<[string, string]>, name: string): string {
  const v = ins.filter(([k]) => k === name).at(-1)?.[1];
  if (v === undefined) throw new Error(`no ${name} in the Dockerfile`);
  return v;
}

/**
 * The subset of YAML the compose file uses: block maps, block lists of scalars, flow lists of
 * scalars, plain or quoted scalars, full-line comments. Anything else throws, so a file that
 * drifts beyond it fails here rather than being misread.
 */
type Yaml = string | Yaml[] | { [k: string]: Yaml };
function parseYamlSubset(text: string): Yaml {
  const lines = text
    .split("\n")
    .map((raw) => ({ indent: raw.length - raw.trimStart().length, body: raw.trim() }))
    .filter((l) => l.body && !l.body.startsWith("#"));
  let i = 0;
  const scalar = (s: string): Yaml => {
    if (s.startsWith("[")) {
      if (!s.endsWith("]")) throw new Error(`flow list: ${s}`);
      const inner = s.slice(1, -1).trim();
      return inner ? inner.split(",").map((x) => scalar(x.trim())) : [];
    }
    if (/^".*"$/.test(s)) return JSON.parse(s) as string;
    if (/^'.*'$/.test(s)) return s.slice(1, -1);
    if (/\s#/.test(s) || /^[{&*!|>]/.test(s)) throw new Error(`outside the subset: ${s}`);
    return s;
  };
  const block = (indent: number): Yaml => {
    const first = lines[i];
    if (!first || first.indent !== indent) throw new Error(`bad indentation at ${first?.body}`);
    if (first.body.startsWith("- ")) {
      const list: Yaml[] = [];
      while (lines[i]?.indent === indent && lines[i]?.body.startsWith("- ")) list.push(scalar((lines[i++] as { body: string }).body.slice(2).trim()));
      return list;
    }
    const map: { [k: string]: Yaml } = {};
    while (lines[i]?.indent === indent) {
      const body = (lines[i++] as { body: string }).body;
      const m = /^([A-Za-z0-9_.-]+):(?:\s+(.*))?$/.exec(body);
      if (!m) throw new Error(`not a map entry: ${body}`);
      const key = m[1] as string;
      if (key in map) throw new Error(`duplicate key ${key}`);
      map[key] = m[2] !== undefined ? scalar(m[2]) : block((lines[i] as { indent: number }).indent > indent ? (lines[i] as { indent: number }).indent : -1);
    }
    return map;
  };
  const doc = block(0);
  if (i !== lines.length) throw new Error(`unparsed from: ${lines[i]?.body}`);
  return doc;
}

describe("deploy/docker", () => {
  const ins = dockerfile();
  const entrypoint = JSON.parse(lastOf(ins, "ENTRYPOINT")) as string[];
  const cmd = JSON.parse(lastOf(ins, "CMD")) as string[];
  const health = lastOf(ins, "HEALTHCHECK");
  const healthArgv = JSON.parse(health.slice(health.indexOf("CMD ") + 4)) as string[];
  const compose = parseYamlSubset(readFileSync(path.join(DOCKER, "docker-compose.yml"), "utf8")) as { [k: string]: { [k: string]: { [k: string]: Yaml } } };

  it("runs as a non-root user, installs the package's bin at /usr/local/bin/vault-render, and is exec-form vault-render", () => {
    const users = ins.filter(([k]) => k === "USER").map(([, v]) => v);
    expect(users.at(-1)).toMatch(/^vault-render(:vault-render)?$/);
    expect(lastOf(ins, "RUN")).toMatch(/npm install -g --omit=dev .*vault-render\.tgz/);
    // npm install -g links package.json's bin into <prefix>/bin, /usr/local/bin on node images.
    const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { bin: Record<string, string> };
    expect(Object.keys(pkg.bin)).toEqual([path.basename(INSTALLED_BIN)]);
    expect(entrypoint).toEqual(["vault-render"]);
    expect(cmd[0]).toBe("watch");
    expect(healthArgv.slice(0, 3)).toEqual(["vault-render", "check", "--offline"]);
    // The healthcheck's --max-age is twice the watch interval.
    const interval = cmd[cmd.indexOf("--interval") + 1] as string;
    const maxAge = healthArgv[healthArgv.indexOf("--max-age") + 1] as string;
    expect(seconds(maxAge)).toBe(2 * seconds(interval));
    // The image's layout variable is the tree's layout, as in the units.
    expect(lastOf(ins, "ENV")).toContain(`VAULT_RENDER_LAYOUT=${TREE_ROOT}/vault-layout.json`);
  });

  it("the healthcheck command exits 0 on a fresh tree after a sync and 1 once the last sync is older than --max-age", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "pw-1" });
    // The image's environment: the layout from VAULT_RENDER_LAYOUT, no --layout.
    const env = { VAULT_RENDER_LAYOUT: t.layoutFile, VAULT_ADDR: t.double.url };
    const run = (argv: string[], extra: Record<string, string> = {}) => runInProcess(argv, { env: { ...env, ...extra }, cwd: t.dir });
    // Before any sync: unhealthy (the compose consumer waits for service_healthy).
    expect((await run(healthArgv.slice(1))).code).toBe(1);
    expect((await run(["sync"])).code).toBe(0);
    const fresh = await run(healthArgv.slice(1));
    expect({ code: fresh.code, stderr: fresh.stderr }).toEqual({ code: 0, stderr: "" });
    const maxAge = seconds(healthArgv[healthArgv.indexOf("--max-age") + 1] as string);
    const stale = await run(healthArgv.slice(1), { VAULT_RENDER_TEST_NOW_OFFSET: String(maxAge + 60) });
    expect(stale.code).toBe(1);
    expect(stale.stdout).toMatch(/longer ago than --max-age/);
  });

  it("the entrypoint and command (watch) run against a tree, reload on SIGHUP and exit 0 on SIGTERM (the systemd watch unit's ExecStart too)", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "pw-1" });
    const unitArgs = execArgs("vault-render-watch.service", t);
    expect(unitArgs.slice(2)).toEqual(cmd);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("VAULT_")) env[k] = v;
    Object.assign(env, { VAULT_ADDR: t.double.url, VAULT_RENDER_LAYOUT: t.layoutFile, NO_COLOR: "1" });
    // The image's argv: ENTRYPOINT + CMD, the layout from VAULT_RENDER_LAYOUT.
    const child = spawn(process.execPath, [BIN, ...entrypoint.slice(1), ...cmd], { cwd: t.dir, env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const file = path.join(t.publicDir, "app.env");
    const until = async (what: string, fn: () => Promise<boolean>) => {
      const end = Date.now() + scaled(15_000);
      while (!(await fn())) {
        if (Date.now() > end || child.exitCode !== null) throw new Error(`timed out waiting for ${what}: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      await until("the first pass", async () => (await readFile(file, "utf8").catch(() => "")).includes("pw-1"));
      // ExecReload: /bin/kill -HUP $MAINPID runs a pass now (the interval is 5 minutes away).
      t.double.kvPut("secret", "app", { password: "pw-2" });
      const reload = one(parseUnit(path.join(SYSTEMD, "vault-render-watch.service")), "Service", "ExecReload").replace("$MAINPID", String(child.pid)).split(" ");
      expect(spawnSync(reload[0] as string, reload.slice(1)).status).toBe(0);
      await until("the pass after SIGHUP", async () => (await readFile(file, "utf8").catch(() => "")).includes("pw-2"));
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      await exited;
    }
  });

  it("docker-compose.yml: watch with the whole tree, a consumer with its public/ directory read-only, the Docker API only through the proxy", () => {
    const s = compose.services as { [k: string]: { [k: string]: Yaml } };
    expect(Object.keys(s).sort()).toEqual(["app", "docker-api", "vault-render"]);
    const vr = s["vault-render"] as { [k: string]: Yaml };
    expect(vr.command).toEqual(cmd);
    expect(vr.volumes).toEqual([`${TREE_ROOT}:${TREE_ROOT}`]);
    expect((vr.environment as { [k: string]: string }).VAULT_RENDER_LAYOUT).toBe(`${TREE_ROOT}/vault-layout.json`);
    expect(vr.user).toMatch(/^\$\{VR_UID:-10001\}:\$\{VR_GID:-10001\}$/);
    expect(vr.cap_drop).toEqual(["ALL"]);
    expect((vr.build as { [k: string]: string }).dockerfile).toBe("deploy/docker/Dockerfile");
    // stop_grace_period = the watch unit's TimeoutStopSec.
    expect(seconds(vr.stop_grace_period as string)).toBe(seconds(one(parseUnit(path.join(SYSTEMD, "vault-render-watch.service")), "Service", "TimeoutStopSec")));
    const app = s.app as { [k: string]: Yaml };
    expect(app.volumes).toEqual([`${TREE_ROOT}/public/app:/run/secrets/app:ro`]);
    expect(app.depends_on).toEqual({ "vault-render": { condition: "service_healthy" } });
    // The Docker socket reaches only the proxy, read-only, on an internal network.
    const sockets = Object.entries(s).filter(([, v]) => JSON.stringify(v.volumes ?? []).includes("docker.sock"));
    expect(sockets.map(([k, v]) => [k, v.volumes])).toEqual([["docker-api", ["/var/run/docker.sock:/var/run/docker.sock:ro"]]]);
    expect((s["docker-api"] as { [k: string]: { [k: string]: string } }).environment?.EXEC).toBe("0");
    expect(compose.networks).toEqual({ "docker-api": { internal: "true" } });
  });
});

/** The fenced blocks of one language in a doc. */
function fenced(doc: string, lang: string): string[] {
  const text = readFileSync(path.join(ROOT, "docs", doc), "utf8");
  return [...text.matchAll(new RegExp("```" + lang + "\\n([\\s\\S]*?)```", "g"))].map((m) => m[1] as string);
}

const meaningful = (block: string) =>
  block
    .split("\n")
    .map((l) => l.replace(/\s+#.*$/, "").trim())
    .filter((l) => l && !l.startsWith("#") && !/^\[.+\]$/.test(l));

describe("the docs' excerpts of deploy/", () => {
  it.each([
    ["watch.md", "vault-render-watch.service"],
    ["operations.md", "vault-render-sync.service"],
  ])("every unit line %s shows is in %s", (doc, unit) => {
    const lines = new Set(meaningful(readFileSync(path.join(SYSTEMD, unit), "utf8")));
    const shown = fenced(doc, "ini").flatMap(meaningful);
    expect(shown.length).toBeGreaterThan(5);
    expect(shown.filter((l) => !lines.has(l))).toEqual([]);
  });

  it("every compose line watch.md shows is in docker-compose.yml", () => {
    const lines = new Set(meaningful(readFileSync(path.join(DOCKER, "docker-compose.yml"), "utf8")));
    const shown = fenced("watch.md", "yaml").flatMap(meaningful);
    expect(shown.length).toBeGreaterThan(5);
    expect(shown.filter((l) => !lines.has(l))).toEqual([]);
  });

  it("the Docker hook watch.md shows (and the compose file quotes) is a valid layout hook that POSTs the consumer's kill?signal=HUP and fails on a refusal", async () => {
    const [json] = fenced("watch.md", "json");
    const { hookSchema } = await import("../src/core/layout/schema.js");
    const hooks = (JSON.parse(`{${json as string}}`) as { hooks: Record<string, unknown> }).hooks;
    const hook = hookSchema.parse(hooks["reload-app"]);
    const script = (hook.command as string[]).at(-1) as string;
    expect(readFileSync(path.join(DOCKER, "docker-compose.yml"), "utf8")).toContain(JSON.stringify(script));
    const { createServer } = await import("node:http");
    const seen: string[] = [];
    let status = 204;
    const server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.writeHead(status).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const port = (server.address() as { port: number }).port;
      const argv = (hook.command as string[]).map((a) => a.replace("http://docker-api:2375", `http://127.0.0.1:${port}`));
      expect(argv[0]).toBe("node");
      const run = () =>
        new Promise<number | null>((resolve) => {
          const c = spawn(process.execPath, argv.slice(1), { stdio: "ignore" });
          c.on("exit", (code) => resolve(code));
        });
      expect(await run()).toBe(0);
      status = 404;
      expect(await run()).toBe(1);
      expect(seen).toEqual(["POST /containers/app/kill?signal=HUP", "POST /containers/app/kill?signal=HUP"]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
