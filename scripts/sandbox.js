// `npm run sandbox [-- --dir <tree>] [--port <n>] [--bare]`: a throwaway Vault to try vault-render against.
// Starts the bundled Vault-API double (dist/double/serve.js, seed format at the top of
// src/double/serve.ts) on loopback with the demo's secrets, writes a ready role_id/secret_id and a
// layout into the tree (default ./sandbox; `--dir demo` keeps serving the tree `npm run demo` left),
// prints VAULT_ADDR, the root token and the next command, and runs until Ctrl-C / SIGTERM (exit 0).
// Everything lives in memory: stopping it forgets every secret, token and role. `--bare` starts it
// with nothing configured (no mounts, no AppRole, no tree written), as a new Vault is before the
// operations guide's setup, to rehearse that guide from its first command (test/docs-runnable.test.ts).
import { execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const bin = path.join(root, "bin/vault-render.js");
const serve = path.join(root, "dist/double/serve.js");

function fail(msg) {
  process.stderr.write(`sandbox: ${msg}\n`);
  process.exit(2);
}

const args = { dir: "sandbox", port: "8200" };
const argv = process.argv.slice(2);
const bare = argv.includes("--bare");
if (bare) argv.splice(argv.indexOf("--bare"), 1);
for (let i = 0; i < argv.length; i++) {
  const [k, inline] = argv[i].split(/=(.*)/s, 2);
  const key = k.replace(/^--/, "");
  if (!k.startsWith("--") || !(key in args)) fail(`unknown argument ${argv[i]} (usage: sandbox [--dir <tree>] [--port <n>] [--bare])`);
  const v = inline ?? argv[++i];
  if (v === undefined) fail(`missing value for ${k}`);
  args[key] = v;
}
if (!/^\d+$/.test(args.port)) fail(`--port must be a number, got ${args.port}`);
if (!existsSync(serve)) fail(`${path.relative(process.cwd(), serve)} is missing: run npm run build first (npm run sandbox does)`);

// --- the tree -----------------------------------------------------------------------------------
const dir = path.resolve(args.dir);
const agentOnly = path.join(dir, "agent-only");
const approle = path.join(agentOnly, "approle");
const layoutFile = path.join(dir, "vault-layout.json");
if (!bare) {
  mkdirSync(approle, { recursive: true });
  mkdirSync(path.join(dir, "public"), { recursive: true });
  chmodSync(agentOnly, 0o700);
  chmodSync(approle, 0o700);
  chmodSync(path.join(dir, "public"), 0o755);
}
if (!bare && !existsSync(path.join(dir, "templates"))) cpSync(path.join(root, "templates"), path.join(dir, "templates"), { recursive: true });

const roleIdFile = path.join(approle, "role_id");
const secretIdFile = path.join(approle, "secret_id");
// A tree from an earlier sandbox or demo keeps its role_id; its secret_id and cached token belonged
// to a Vault that is gone, so they are replaced.
const roleId = !bare && existsSync(roleIdFile) ? readFileSync(roleIdFile, "utf8").trim() : randomUUID();
if (!bare) rmSync(path.join(agentOnly, "token"), { force: true });

// --- the Vault double, seeded like the demo -----------------------------------------------------
const traefik = ["v1", "v2", "demo-Tr-3b3b"].map((pw) => ({ mount: "secret", path: "homelab/traefik", data: { admin_user: "admin", admin_htpasswd: `$apr1$demo$${pw}` } }));
const seed = bare ? {} : {
  mounts: [
    { path: "secret", version: 2 },
    { path: "kv", version: 1 },
  ],
  kv: [
    { mount: "secret", path: "homelab/postgres", data: { host: "postgres", user: "nextcloud", password: "demo-Pg-7c1e4b9a" } },
    { mount: "secret", path: "homelab/nextcloud", data: { admin_user: "admin", admin_password: "demo-Nc-2f8d6e0c" } },
    { mount: "secret", path: "homelab/grafana", data: { SECURITY_ADMIN_PASSWORD: "demo-Gf-$9a1", SMTP_PASSWORD: "demo-smtp" } },
    { mount: "kv", path: "mail/smtp", data: { password: "demo-Smtp-55e1" } },
    ...traefik,
  ],
  pki: [{ path: "pki_int", roles: { homelab: { allowedDomains: ["home.arpa"], allowSubdomains: true, allowIpSans: true, maxTtl: 90 * 86400 } } }],
  databases: [{ path: "database", roles: { nextcloud: { defaultTtl: 3600, maxTtl: 86400 } } }],
  approles: [{ roleName: "homelab", roleId, policies: ["homelab"], tokenTtl: 3600, tokenMaxTtl: 86400 }],
};
const seedDir = mkdtempSync(path.join(tmpdir(), "vault-render-sandbox-"));
const seedFile = path.join(seedDir, "seed.json");
writeFileSync(seedFile, JSON.stringify(seed), { mode: 0o600 });

const child = spawn(process.execPath, [serve, "--host", "127.0.0.1", "--port", args.port, "--seed", seedFile], { stdio: ["ignore", "pipe", "inherit"] });
let stopping = false;
let failed = false;
child.on("exit", (code, signal) => {
  rmSync(seedDir, { recursive: true, force: true });
  if (stopping) process.exit(failed ? 1 : 0);
  process.stderr.write(`sandbox: the Vault double stopped unexpectedly (${signal ?? `exit ${code}`})\n`);
  process.exit(1);
});
const stop = () => {
  if (stopping) return;
  stopping = true;
  child.kill("SIGTERM");
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

const first = await new Promise((resolve) => createInterface({ input: child.stdout }).once("line", resolve));
const { url, rootToken } = JSON.parse(first);
rmSync(seedDir, { recursive: true, force: true });

async function vault(method, p, body, headers = {}) {
  const r = await fetch(`${url}/v1/${p}`, { method, headers: { "X-Vault-Token": rootToken, ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!r.ok) throw new Error(`${method} ${p}: HTTP ${r.status}`);
  return r.status === 204 ? undefined : r.json();
}

if (bare) {
  process.stdout.write(`Sandbox Vault (the bundled test double, in memory, bare: no mounts, no AppRole) listening on ${url}

  export VAULT_ADDR=${url}
  export VAULT_TOKEN=${rootToken}   # root token of this throwaway sandbox, not a real secret; it is gone when the sandbox stops

Next: the operations guide from its first command (docs/operations.md: vault-render init, then the vault commands it prints).
Ctrl-C stops it and forgets everything.
`);
  await new Promise(() => {});
}

try {
  if (!existsSync(layoutFile)) {
    const layout = JSON.parse(readFileSync(path.join(root, "vault-layout.example.json"), "utf8"));
    layout.$schema = path.relative(dir, path.join(root, "schema/vault-layout.schema.json"));
    layout.vault.address = url;
    delete layout.vault.caCert;
    // There are no containers to restart here: each hook only says what it would have run.
    for (const [name, hook] of Object.entries(layout.hooks ?? {})) {
      hook.command = ["echo", `(sandbox) hook ${name} would run: ${hook.command.join(" ")}`];
    }
    writeFileSync(layoutFile, JSON.stringify(layout, null, 2) + "\n");
  }
  // The role gets exactly the least-privilege policy vault-render derives from the layout, written
  // and the secret_id generated through the same API calls the operations guide makes.
  const hcl = execFileSync(process.execPath, [bin, "--layout", layoutFile, "policy"], { encoding: "utf8", env: { ...process.env, VAULT_ADDR: url } });
  await vault("PUT", "sys/policies/acl/homelab", { policy: hcl });
  const sid = await vault("POST", "auth/approle/role/homelab/secret-id", {});
  writeFileSync(roleIdFile, `${roleId}\n`, { mode: 0o600 });
  writeFileSync(secretIdFile, `${sid.data.secret_id}\n`, { mode: 0o600 });
  chmodSync(roleIdFile, 0o600);
  chmodSync(secretIdFile, 0o600);
} catch (e) {
  process.stderr.write(`sandbox: ${e instanceof Error ? e.message : String(e)}\n`);
  failed = true;
  stop();
  await new Promise(() => {});
}

const rel = path.relative(process.cwd(), layoutFile);
const shown = rel.startsWith("..") || path.isAbsolute(rel) ? layoutFile : rel;
process.stdout.write(`Sandbox Vault (the bundled test double, in memory) listening on ${url}
Tree: ${dir}  (role_id and secret_id in agent-only/approle/, layout vault-layout.json)

  export VAULT_ADDR=${url}
  export VAULT_TOKEN=${rootToken}   # root token of this throwaway sandbox, not a real secret; it is gone when the sandbox stops

Next:
  vault-render --layout ${shown} sync

The operations guide's vault commands (policy write, auth enable, write auth/approle/role/..., secrets enable, kv put) work against it too.
Ctrl-C stops it and forgets everything.
`);
