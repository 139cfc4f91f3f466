/**
 * Integration-test helpers: a temp tree with a layout, a Vault double seeded for it, and two ways
 * to run the CLI against it: in-process (test/support/in-process.ts, the default: argv → options →
 * core in this process) or the BUILT CLI (dist/) as a child process, as cron would (`mode: "child"`,
 * for the CLI contract: exit status, signals, crashes, EPIPE, umask, lock contention, watch).
 */
import { spawn } from "node:child_process";
import { mkdtemp, mkdir, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { startVaultDouble } from "../src/double/vault-double.js";
import type { VaultDouble } from "../src/double/vault-double.js";
import type { Clock } from "../src/core/support/clock.js";
import { systemClock } from "../src/core/support/clock.js";
import { runInProcess } from "./support/in-process.js";
import { scaled } from "./support/scale.js";
import { wantsHooks } from "./support/test-hooks.js";

export { scaled } from "./support/scale.js";
export { runInProcess } from "./support/in-process.js";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
/** The production entry: it never reads a VAULT_RENDER_TEST_* variable. */
export const BIN = path.join(ROOT, "bin", "vault-render.js");
/** The built CLI with its test hooks read from VAULT_RENDER_TEST_* (test/support/test-hooks.js). */
export const HOOKS_BIN = path.join(ROOT, "test", "support", "cli-with-hooks.js");

/** In this process (the default) or as a child process of the built CLI. */
export type RunMode = "in-process" | "child";

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Run the built CLI as a child process. `entry` defaults to the hooks entry when env sets a
 * VAULT_RENDER_TEST_* variable, else the production bin; `timeoutMs` (default 25 s) is scaled.
 */
export function runCli(args: string[], opts: { cwd?: string; env?: Record<string, string | undefined>; umask?: string; timeoutMs?: number; entry?: "bin" | "hooks" } = {}): Promise<RunResult> {
  const entry = (opts.entry ?? (wantsHooks(opts.env) ? "hooks" : "bin")) === "hooks" ? HOOKS_BIN : BIN;
  return new Promise((resolve, reject) => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, NO_COLOR: "1", ...opts.env })) {
      if (v !== undefined && !k.startsWith("VAULT_") && k !== "VAULT_RENDER_LAYOUT") env[k] = v;
    }
    for (const [k, v] of Object.entries(opts.env ?? {})) if (v !== undefined) env[k] = v;
    const cmd = opts.umask ? "sh" : process.execPath;
    const argv = opts.umask ? ["-c", `umask ${opts.umask} && exec "$0" "$@"`, process.execPath, entry, ...args] : [entry, ...args];
    const child = spawn(cmd, argv, { cwd: opts.cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), scaled(opts.timeoutMs ?? 25_000));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export interface Tree {
  dir: string;
  layoutFile: string;
  publicDir: string;
  agentDir: string;
  double: VaultDouble;
  roleId: string;
  /**
   * Run the CLI against this tree (VAULT_ADDR points at the double): in-process unless `mode` (or
   * the tree's mode) is "child", or the run can only act on a new process (NODE_OPTIONS in env, a
   * VAULT_RENDER_TEST_FAULT=kill: fault).
   */
  run: (args: string[], opts?: { env?: Record<string, string | undefined>; umask?: string; mode?: RunMode; clock?: Clock }) => Promise<RunResult>;
  writeLayout: (layout: Record<string, unknown>) => Promise<void>;
  cleanup: () => Promise<void>;
}

export const APP_POLICY = `
path "secret/data/*" { capabilities = ["read"] }
path "secret/metadata/*" { capabilities = ["read"] }
path "kv/*" { capabilities = ["read"] }
path "sys/internal/ui/mounts/*" { capabilities = ["read"] }
`;

/** The rules every PKI-set and lease test needs (compose with the KV and AppRole rules of the test). */
export const PKI_LEASE_RULES = `
path "sys/internal/ui/mounts/*" { capabilities = ["read"] }
path "pki_int/issue/web" { capabilities = ["update"] }
path "database/creds/app" { capabilities = ["read"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
`;

export function baseLayout(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: 1,
    auth: { approle: { roleIdFile: "approle/role_id", secretIdFile: "approle/secret_id" } },
    sources: { app: { type: "kv", mount: "secret", path: "app" } },
    outputs: [{ file: "app.env", format: "env", keys: { DB_PASSWORD: "app.password" } }],
    ...extra,
  };
}

/**
 * The default mode of a tree: in-process, except in test/reliability/, whose files were written
 * against the built CLI and keep it until they say otherwise (`makeTree({ mode: "in-process" })`).
 */
function defaultMode(): RunMode {
  const file = expect.getState().testPath ?? "";
  return /[\\/]test[\\/]reliability[\\/]/.test(file) ? "child" : "in-process";
}

/** Runs whose environment only a new process can honour. */
function needsChild(env: Record<string, string | undefined> | undefined): boolean {
  return env?.NODE_OPTIONS !== undefined || /^kill:/.test(env?.VAULT_RENDER_TEST_FAULT ?? "");
}

export async function makeTree(opts: { layout?: Record<string, unknown>; policy?: string; tokenTtl?: number; tokenMaxTtl?: number; double?: VaultDouble; mode?: RunMode } = {}): Promise<Tree> {
  const dir = await mkdtemp(path.join(tmpdir(), "vr-test-"));
  const double = opts.double ?? (await startVaultDouble());
  double.mountKv("secret", 2);
  double.mountKv("kv", 1);
  double.addPolicy("app", opts.policy ?? APP_POLICY);
  const { roleId } = double.addAppRole({ roleName: "app", policies: ["app"], tokenTtl: opts.tokenTtl ?? 3600, tokenMaxTtl: opts.tokenMaxTtl ?? 86400 });
  const sid = double.generateSecretId("app");
  if (!("secretId" in sid)) throw new Error("expected a plain secret id");
  const agentDir = path.join(dir, "agent-only");
  await mkdir(path.join(agentDir, "approle"), { recursive: true, mode: 0o700 });
  await writeFile(path.join(agentDir, "approle", "role_id"), roleId + "\n", { mode: 0o600 });
  await writeFile(path.join(agentDir, "approle", "secret_id"), sid.secretId + "\n", { mode: 0o600 });
  const layoutFile = path.join(dir, "vault-layout.json");
  const treeMode = opts.mode ?? defaultMode();
  const tree: Tree = {
    dir,
    layoutFile,
    publicDir: path.join(dir, "public"),
    agentDir,
    double,
    roleId,
    run: (args, o = {}) => {
      const env = { VAULT_ADDR: double.url, ...o.env };
      const mode = o.mode ?? (needsChild(o.env) ? "child" : treeMode);
      const argv = ["--layout", layoutFile, ...args];
      if (mode === "child" && o.clock) throw new Error("a clock can only be given to an in-process run");
      return mode === "child" ? runCli(argv, { cwd: dir, env, umask: o.umask }) : runInProcess(argv, { env, ...(o.umask ? { umask: o.umask } : {}), ...(o.clock ? { clock: o.clock } : {}) });
    },
    writeLayout: (l) => writeFile(layoutFile, JSON.stringify(l, null, 2)),
    cleanup: async () => {
      if (!opts.double) await double.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  await tree.writeLayout(opts.layout ?? baseLayout());
  return tree;
}

/**
 * The system clock, recording every wait it is asked for (assert on waits, never on elapsed time).
 * `waits` maps a requested wait to the one really taken (e.g. a 5 s kill grace taken as 50 ms).
 */
export function recordingClock(waits: (ms: number) => number = (ms) => ms): Clock & { sleeps: number[] } {
  const sleeps: number[] = [];
  return { ...systemClock, sleeps, sleep: (ms, signal) => (sleeps.push(ms), systemClock.sleep(waits(ms), signal)) };
}

export interface FileSnap {
  mode: number;
  mtimeMs: number;
  ino: number;
  content: string;
}

/** Every entry under dir (relative path → mode, mtime, inode, content for files). */
export async function snapshot(dir: string): Promise<Map<string, FileSnap>> {
  const out = new Map<string, FileSnap>();
  const walk = async (rel: string) => {
    const abs = path.join(dir, rel);
    let names: string[];
    try {
      names = await readdir(abs);
    } catch {
      return;
    }
    for (const n of names.sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const st = await stat(path.join(dir, r));
      if (st.isDirectory()) {
        out.set(r + "/", { mode: st.mode & 0o7777, mtimeMs: st.mtimeMs, ino: st.ino, content: "" });
        await walk(r);
      } else {
        out.set(r, { mode: st.mode & 0o7777, mtimeMs: st.mtimeMs, ino: st.ino, content: await readFile(path.join(dir, r), "utf8") });
      }
    }
  };
  await walk("");
  return out;
}

/** `tree(opts)` makes a tree that is cleaned up after each test of the calling file. */
export function trackedTrees(afterEachHook: (fn: () => Promise<void>) => void): (opts?: Parameters<typeof makeTree>[0]) => Promise<Tree> {
  let trees: Tree[] = [];
  afterEachHook(async () => {
    await Promise.all(trees.map((t) => t.cleanup()));
    trees = [];
  });
  return async (opts = {}) => {
    const t = await makeTree(opts);
    trees.push(t);
    return t;
  };
}
