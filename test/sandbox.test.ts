/**
 * `npm run sandbox` (scripts/sandbox.js over the built double, child processes): it prints
 * VAULT_ADDR and the next command, that command (built bin) syncs against it, the operations
 * guide's setup (policy write, auth enable, secrets enable, role write, role-id, wrapped
 * secret-id, kv put) rehearsed as the raw HTTP calls the `vault` CLI makes is followed by a
 * working `sync` of an `init` tree, and SIGTERM stops it with exit 0.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { runCli } from "./helpers.js";
import { scaled } from "./support/scale.js";
import type { InitResult } from "../src/core/init/init.js";

const ROOT = path.resolve(import.meta.dirname, "..");
const dirs: string[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const mode = async (p: string) => (await stat(p)).mode & 0o777;

/** Starts the sandbox and resolves once it has printed its instructions. */
function startSandbox(dir: string): Promise<{ child: ChildProcess; out: string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [path.join(ROOT, "scripts/sandbox.js"), "--dir", dir, "--port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`sandbox did not get ready: ${out}${err}`)), scaled(20_000));
    child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("Ctrl-C stops it")) {
        clearTimeout(timer);
        resolve({ child, out, exited });
      }
    });
    child.on("exit", (code) => reject(new Error(`sandbox exited ${code}: ${err}`)));
  });
}

describe("npm run sandbox (child processes)", () => {
  it("serves a tree whose printed next command syncs, the operations guide can be rehearsed on it, SIGTERM exits 0", async () => {
    const base = await mkdtemp(path.join(tmpdir(), "vr-sandbox-"));
    dirs.push(base);
    const dir = path.join(base, "sandbox");
    const { child, out, exited } = await startSandbox(dir);

    const addr = /^ {2}export VAULT_ADDR=(\S+)$/m.exec(out)?.[1] ?? "";
    expect(addr).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const rootToken = /^ {2}export VAULT_TOKEN=(\S+)/m.exec(out)?.[1] ?? "";
    expect(out).toMatch(/throwaway sandbox/);
    const next = /^Next:\n {2}vault-render (.+)$/m.exec(out)?.[1] ?? "";
    expect(next).toBe(`--layout ${path.join(dir, "vault-layout.json")} sync`);
    expect(await mode(path.join(dir, "agent-only"))).toBe(0o700);
    expect(await mode(path.join(dir, "agent-only/approle/role_id"))).toBe(0o600);
    expect(await mode(path.join(dir, "agent-only/approle/secret_id"))).toBe(0o600);
    expect(await mode(path.join(dir, "public"))).toBe(0o755);

    const sync = await runCli(next.split(" "), { cwd: base, env: { VAULT_ADDR: addr } });
    expect(sync.stderr).toBe("");
    expect(sync.code).toBe(0);
    expect(await readFile(path.join(dir, "public/nextcloud/nextcloud.env"), "utf8")).toContain("demo-Nc-2f8d6e0c");

    // The operations guide, as the vault CLI's HTTP calls, on a second tree `init` made.
    const vault = async (method: string, p: string, body?: unknown, headers: Record<string, string> = {}) => {
      const r = await fetch(`${addr}/v1/${p}`, { method, headers: { "X-Vault-Token": rootToken, ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await r.text();
      return { status: r.status, json: text ? (JSON.parse(text) as { data?: Record<string, string>; wrap_info?: { token: string } }) : {} };
    };
    const ops = path.join(base, "ops");
    const init = await runCli(["init", "--json", ops, "--role", "ops", "--mount", "approle-ops", "--kv-mount", "opskv", "--vault-addr", addr]);
    expect(init.code).toBe(0);
    const res = JSON.parse(init.stdout) as InitResult;
    expect((await vault("POST", "sys/auth/approle-ops", { type: "approle" })).status).toBe(204); // vault auth enable -path=approle-ops approle
    expect((await vault("POST", "sys/mounts/opskv", { type: "kv", options: { version: "2" } })).status).toBe(204); // vault secrets enable -path=opskv -version=2 kv
    expect((await vault("PUT", "sys/policies/acl/ops", { policy: res.policy })).status).toBe(204); // vault policy write ops -
    const role = { token_policies: "ops", token_ttl: "1h", token_max_ttl: "24h", secret_id_ttl: "720h", secret_id_num_uses: "0" };
    expect((await vault("PUT", "auth/approle-ops/role/ops", role)).status).toBe(204); // vault write auth/approle-ops/role/ops ...
    const roleId = (await vault("GET", "auth/approle-ops/role/ops/role-id")).json.data?.["role_id"] ?? "";
    const wrapped = await vault("PUT", "auth/approle-ops/role/ops/secret-id", {}, { "X-Vault-Wrap-TTL": "24h" }); // vault write -f -wrap-ttl=24h
    await writeFile(path.join(ops, "agent-only/approle/role_id"), `${roleId}\n`, { mode: 0o600 });
    await writeFile(path.join(ops, "agent-only/approle/secret_id"), `${wrapped.json.wrap_info?.token ?? ""}\n`, { mode: 0o600 });
    expect((await vault("PUT", "opskv/data/ops/app", { data: { GREETING: "hello" } })).status).toBe(200); // vault kv put -mount=opskv ops/app GREETING=hello
    const opsSync = await runCli(["--layout", res.layout, "sync"], { cwd: base });
    expect(opsSync.stderr).toBe("");
    expect(opsSync.code).toBe(0);
    expect(await readFile(path.join(ops, "public/app/app.env"), "utf8")).toMatch(/^GREETING='?hello'?$/m);

    child.kill("SIGTERM");
    expect(await exited).toBe(0);

    // A second sandbox on the same tree (as on the demo's): same role_id, a fresh secret_id, sync works.
    const roleIdBefore = await readFile(path.join(dir, "agent-only/approle/role_id"), "utf8");
    const again = await startSandbox(dir);
    expect(await readFile(path.join(dir, "agent-only/approle/role_id"), "utf8")).toBe(roleIdBefore);
    const addr2 = /^ {2}export VAULT_ADDR=(\S+)$/m.exec(again.out)?.[1] ?? "";
    const resync = await runCli(next.split(" "), { cwd: base, env: { VAULT_ADDR: addr2 } });
    expect(resync.code).toBe(0);
    again.child.kill("SIGTERM");
    expect(await again.exited).toBe(0);
  });
});
