/**
 * `vault-render init`: the tree and its modes (whatever the umask), the starter layout and its
 * schema, idempotence, never overwriting, fixing unsafe modes, the --json shape, the printed policy
 * (the same text as `policy`), the layout validating (`check --offline` finds no layout issue); and
 * one child-process run of the built bin: `init`, then the commands it prints carried out against
 * the Vault double, then `sync` renders the starter output.
 */
import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { runCli, runInProcess } from "./helpers.js";
import { startVaultDouble } from "../src/double/vault-double.js";
import type { InitResult } from "../src/core/init/init.js";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), "vr-init-"));
  dirs.push(d);
  return d;
}

const mode = async (p: string) => (await stat(p)).mode & 0o777;

async function initJson(args: string[], umask = "022"): Promise<InitResult> {
  const r = await runInProcess(["init", "--json", ...args], { umask });
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as InitResult;
}

describe("init", () => {
  it("a --secret-id-file that is a directory names the errno's meaning and the fix", async () => {
    const base = await tempDir();
    const r = await runInProcess(["init", path.join(base, "tree"), "--secret-id-file", base]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`init: cannot read --secret-id-file ${base}: EISDIR: is a directory (hint: --secret-id-file must name a file, not its directory)`);
  });

  it("creates the tree with exact modes whatever the umask, a layout that validates and its schema", async () => {
    const dir = path.join(await tempDir(), "My Lab");
    const res = await initJson([dir], "077");
    expect(res.role).toBe("my-lab");
    expect(Object.keys(res).sort()).toEqual(
      ["version", "dir", "layout", "layoutKept", "role", "mount", "kvMount", "secretIdWrapped", "created", "kept", "fixed", "updated", "changed", "policy", "commands", "warnings"].sort(),
    );
    expect(res).toMatchObject({ version: 1, dir, layout: path.join(dir, "vault-layout.json"), layoutKept: false, mount: "approle", kvMount: "secret", secretIdWrapped: true, changed: true, warnings: [] });
    for (const c of res.commands) expect(Object.keys(c).sort()).toEqual(["command", "purpose"]);
    expect(await mode(dir)).toBe(0o700);
    expect(await mode(path.join(dir, "public"))).toBe(0o755);
    expect(await mode(path.join(dir, "agent-only"))).toBe(0o700);
    expect(await mode(path.join(dir, "agent-only", "approle"))).toBe(0o700);
    expect(await mode(path.join(dir, "vault-layout.json"))).toBe(0o644);
    expect(res.created.map((e) => e.path)).toEqual(["./", "vault-layout.schema.json", "vault-layout.json", "public/", "agent-only/", "agent-only/approle/"]);
    // No AppRole file was given: none is created.
    await expect(stat(path.join(dir, "agent-only", "approle", "role_id"))).rejects.toThrow(/ENOENT/);

    const layout = JSON.parse(await readFile(path.join(dir, "vault-layout.json"), "utf8")) as Record<string, unknown> & { auth: { approle: Record<string, unknown> } };
    expect(layout.$schema).toBe("./vault-layout.schema.json");
    expect(layout.auth.approle).toMatchObject({ mount: "approle", roleName: "my-lab", secretIdWrapped: true, roleIdFile: "approle/role_id", secretIdFile: "approle/secret_id" });
    // $schema resolves to the file beside it, holding the bytes `schema` prints.
    const schemaFile = path.resolve(dir, layout.$schema as string);
    const printed = await runInProcess(["schema"]);
    expect(await readFile(schemaFile, "utf8")).toBe(printed.stdout);

    // The layout validates: check --offline reports no layout problem (only the AppRole files still missing).
    const check = await runInProcess(["--layout", path.join(dir, "vault-layout.json"), "check", "--offline", "--json"]);
    const report = JSON.parse(check.stdout) as { findings: Array<{ check: string; severity: string; subject: string }> };
    expect(report.findings.find((f) => f.check === "layout")?.severity).toBe("ok");
    // What is still to do is what the printed commands do: the AppRole files, then a sync.
    expect(report.findings.filter((f) => f.severity === "error").map((f) => f.subject).sort()).toEqual(["agent-only/approle/role_id", "agent-only/approle/secret_id", "app/app.env"]);
  });

  it("prints the policy `policy` prints for that layout, and the vault commands", async () => {
    const dir = path.join(await tempDir(), "lab");
    const res = await initJson([dir, "--role", "web", "--mount", "approle-home", "--kv-mount", "kv2"]);
    const policy = await runInProcess(["--layout", path.join(dir, "vault-layout.json"), "policy"]);
    expect(policy.code).toBe(0);
    expect(res.policy).toBe(policy.stdout);
    const text = res.commands.map((c) => c.command).join("\n");
    expect(text).toContain("vault auth enable -path=approle-home approle");
    expect(text).toContain("vault secrets enable -path=kv2 -version=2 kv");
    expect(text).toContain(`vault policy write web - <<'EOF'\n${policy.stdout}EOF`);
    expect(text).toMatch(/vault write auth\/approle-home\/role\/web token_policies=web token_ttl=1h token_max_ttl=24h secret_id_ttl=720h/);
    expect(text).toContain(`vault read -field=role_id auth/approle-home/role/web/role-id > ${path.join(dir, "agent-only", "approle", "role_id")}`);
    expect(text).toContain(`vault write -f -wrap-ttl=24h -field=wrapping_token auth/approle-home/role/web/secret-id > ${path.join(dir, "agent-only", "approle", "secret_id")}`);
    // The human form carries the same policy and commands (a rerun: the layout is kept, so the
    // one-off KV commands of the starter are left out).
    const again = await initJson([dir]);
    const human = await runInProcess(["init", dir]);
    expect(human.stdout).toContain(policy.stdout.trimEnd());
    expect(again.commands.length).toBe(res.commands.length - 2);
    for (const c of again.commands) expect(human.stdout).toContain(c.command);
  });

  it("is idempotent: a second run changes nothing and says so", async () => {
    const dir = path.join(await tempDir(), "lab");
    await initJson([dir]);
    const before = await readFile(path.join(dir, "vault-layout.json"), "utf8");
    const again = await initJson([dir]);
    expect(again.changed).toBe(false);
    expect(again.created).toEqual([]);
    expect(again.fixed).toEqual([]);
    expect(again.kept.map((e) => e.path)).toEqual(["vault-layout.schema.json", "vault-layout.json", "public/", "agent-only/", "agent-only/approle/"]);
    expect(await readFile(path.join(dir, "vault-layout.json"), "utf8")).toBe(before);
    const human = await runInProcess(["init", dir]);
    expect(human.stdout).toMatch(/nothing changed/);
  });

  it("copies the AppRole files 0600, never overwrites them or the layout, and says when they differ", async () => {
    const base = await tempDir();
    const dir = path.join(base, "lab");
    await writeFile(path.join(base, "rid"), "role-1234\n", { mode: 0o644 });
    await writeFile(path.join(base, "sid"), "secret-5678\n", { mode: 0o644 });
    const res = await initJson([dir, "--role-id-file", path.join(base, "rid"), "--secret-id-file", path.join(base, "sid"), "--plain-secret-id"]);
    const rid = path.join(dir, "agent-only", "approle", "role_id");
    const sid = path.join(dir, "agent-only", "approle", "secret_id");
    expect(await mode(rid)).toBe(0o600);
    expect(await mode(sid)).toBe(0o600);
    expect(await readFile(rid, "utf8")).toBe("role-1234\n");
    expect(res.created.map((e) => e.path)).toContain("agent-only/approle/secret_id");
    // Files that exist: the fetch commands are left out (running them would overwrite a secret).
    expect(res.commands.map((c) => c.command).join("\n")).not.toMatch(/role-id >|secret-id >/);
    expect(JSON.stringify(res)).not.toContain("secret-5678");

    await writeFile(path.join(dir, "vault-layout.json"), '{"mine": true}\n');
    await writeFile(path.join(base, "rid2"), "other-role\n");
    const r = await runInProcess(["init", "--json", dir, "--role-id-file", path.join(base, "rid2")]);
    // The edited layout is kept as it is (and being invalid, init says so with exit 2).
    expect(r.code).toBe(2);
    expect(await readFile(path.join(dir, "vault-layout.json"), "utf8")).toBe('{"mine": true}\n');
    expect(await readFile(rid, "utf8")).toBe("role-1234\n");
  });

  it("fixes the mode of directories and AppRole files it owns, and says so", async () => {
    const base = await tempDir();
    const dir = path.join(base, "lab");
    await initJson([dir]);
    await chmod(path.join(dir, "agent-only"), 0o755);
    await chmod(path.join(dir, "agent-only", "approle"), 0o750);
    await chmod(path.join(dir, "public"), 0o777);
    await writeFile(path.join(dir, "agent-only", "approle", "secret_id"), "x\n", { mode: 0o644 });
    await chmod(path.join(dir, "agent-only", "approle", "secret_id"), 0o644);
    const res = await initJson([dir]);
    expect(res.changed).toBe(true);
    expect(res.fixed).toEqual([
      { path: "public/", mode: "0755", from: "0777" },
      { path: "agent-only/", mode: "0700", from: "0755" },
      { path: "agent-only/approle/", mode: "0700", from: "0750" },
      { path: "agent-only/approle/secret_id", mode: "0600", from: "0644" },
    ]);
    expect(await mode(path.join(dir, "agent-only"))).toBe(0o700);
    expect(await mode(path.join(dir, "agent-only", "approle", "secret_id"))).toBe(0o600);
    const human = await runInProcess(["init", dir]);
    expect(human.stdout).toMatch(/nothing changed/);
  });

  it("keeps an existing layout and uses its paths, role and mount", async () => {
    const dir = await tempDir();
    await mkdir(path.join(dir, "x"), { recursive: true });
    const layout = {
      version: 1,
      auth: { approle: { mount: "ar", roleIdFile: "creds/rid", secretIdFile: "creds/sid", roleName: "svc" } },
      paths: { public: "out", agentOnly: "private" },
      sources: { a: { type: "kv", mount: "secret", path: "a", kvVersion: 2 } },
      outputs: [{ file: "a.env", format: "env", from: ["a"] }],
    };
    await writeFile(path.join(dir, "vault-layout.json"), JSON.stringify(layout));
    await chmod(dir, 0o755);
    const r = await runInProcess(["init", "--json", dir, "--role", "other"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/exists: kept as it is/);
    expect(r.stderr).toMatch(/is 0755: other local users can read/);
    const res = JSON.parse(r.stdout) as InitResult;
    expect(res.layoutKept).toBe(true);
    expect(res.role).toBe("svc");
    expect(res.kvMount).toBeNull();
    expect(await mode(path.join(dir, "out"))).toBe(0o755);
    expect(await mode(path.join(dir, "private", "creds"))).toBe(0o700);
    expect(res.commands.map((c) => c.command).join("\n")).toContain(`auth/ar/role/svc/role-id > ${path.join(dir, "private", "creds", "rid")}`);
  });

  it("refuses a bad role name and a symlinked agent-only/", async () => {
    const dir = await tempDir();
    const bad = await runInProcess(["init", dir, "--role", "no spaces"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--role/);
    await mkdir(path.join(dir, "elsewhere"));
    await symlink(path.join(dir, "elsewhere"), path.join(dir, "agent-only"));
    const linked = await runInProcess(["init", dir]);
    expect(linked.code).toBe(5);
    expect(linked.stderr).toMatch(/agent-only\/ exists and is a symlink/);
  });
});

describe("init, then sync (built bin, child process)", () => {
  it("the starter layout works end to end once the printed commands are carried out", async () => {
    const base = await tempDir();
    const dir = path.join(base, "homelab");
    const double = await startVaultDouble();
    try {
      const r = await runCli(["init", "--json", dir, "--vault-addr", double.url]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const res = JSON.parse(r.stdout) as InitResult;
      // What the printed commands do, done on the double.
      double.mountKv(res.kvMount ?? "secret", 2);
      double.addPolicy(res.role, res.policy);
      const { roleId } = double.addAppRole({ roleName: res.role, mount: res.mount, policies: [res.role], tokenTtl: 3600, tokenMaxTtl: 86400, secretIdTtl: 720 * 3600 });
      const wrapped = double.generateSecretId(res.role, { mount: res.mount, wrapTtl: 86400 });
      if (!("wrappingToken" in wrapped)) throw new Error("expected a wrapping token");
      await writeFile(path.join(dir, "agent-only", "approle", "role_id"), roleId, { mode: 0o600 });
      await writeFile(path.join(dir, "agent-only", "approle", "secret_id"), wrapped.wrappingToken, { mode: 0o600 });
      double.kvPut(res.kvMount ?? "secret", `${res.role}/app`, { GREETING: "hello" });

      const sync = await runCli(["--layout", res.layout, "sync"], { cwd: base });
      expect(sync.stderr).toBe("");
      expect(sync.code).toBe(0);
      expect(await readFile(path.join(dir, "public", "app", "app.env"), "utf8")).toMatch(/^GREETING='?hello'?$/m);
      // The wrapping token was unwrapped and replaced by the secret_id.
      expect(await readFile(path.join(dir, "agent-only", "approle", "secret_id"), "utf8")).not.toContain(wrapped.wrappingToken);
    } finally {
      await double.close();
    }
  });
});
