// `npm run demo`: start the bundled Vault-API double seeded with example secrets, run a real
// `vault-render sync` of vault-layout.example.json into ./demo, then show what it wrote.
import { spawn } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startVaultDouble } from "../dist/double/vault-double.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const demo = path.join(root, "demo");
rmSync(demo, { recursive: true, force: true });
mkdirSync(path.join(demo, "agent-only", "approle"), { recursive: true, mode: 0o700 });
cpSync(path.join(root, "templates"), path.join(demo, "templates"), { recursive: true });
const layout = JSON.parse(readFileSync(path.join(root, "vault-layout.example.json"), "utf8"));
layout.$schema = "../schema/vault-layout.schema.json";
writeFileSync(path.join(demo, "vault-layout.json"), JSON.stringify(layout, null, 2) + "\n");

const vault = await startVaultDouble();
vault.mountKv("secret", 2);
vault.mountKv("kv", 1);
vault.kvPut("secret", "homelab/postgres", { host: "postgres", user: "nextcloud", password: "demo-Pg-7c1e4b9a" });
vault.kvPut("secret", "homelab/nextcloud", { admin_user: "admin", admin_password: "demo-Nc-2f8d6e0c" });
vault.kvPut("secret", "homelab/grafana", { SECURITY_ADMIN_PASSWORD: "demo-Gf-$9a1", SMTP_PASSWORD: "demo-smtp" });
vault.kvPut("kv", "mail/smtp", { password: "demo-Smtp-55e1" });
for (const pw of ["v1", "v2", "demo-Tr-3b3b"]) {
  vault.kvPut("secret", "homelab/traefik", { admin_user: "admin", admin_htpasswd: `$apr1$demo$${pw}` });
}
vault.addPolicy(
  "homelab",
  `path "secret/data/homelab/*" { capabilities = ["read"] }
path "kv/mail/*" { capabilities = ["read"] }
path "sys/internal/ui/mounts/*" { capabilities = ["read"] }`,
);
const { roleId } = vault.addAppRole({ roleName: "homelab", policies: ["homelab"], tokenTtl: 3600, tokenMaxTtl: 86400 });
const sid = vault.generateSecretId("homelab");
writeFileSync(path.join(demo, "agent-only/approle/role_id"), roleId + "\n", { mode: 0o600 });
writeFileSync(path.join(demo, "agent-only/approle/secret_id"), sid.secretId + "\n", { mode: 0o600 });

// The double runs in this process, so the CLI must run asynchronously (spawnSync would block it).
const run = (...args) =>
  new Promise((resolve) => {
    console.log(`\n$ vault-render ${args.join(" ")}`);
    const child = spawn(process.execPath, [path.join(root, "bin/vault-render.js"), "--layout", "demo/vault-layout.json", ...args], {
      cwd: root,
      env: { ...process.env, VAULT_ADDR: vault.url },
      stdio: ["ignore", "inherit", "inherit"],
    });
    child.on("close", (code) => {
      console.log(`(exit ${code})`);
      resolve(code);
    });
  });

console.log(`Vault double listening on ${vault.url}; demo tree in ./demo`);
let status = await run("sync", "--dry-run");
status ||= await run("sync", "-v");
console.log("\nWhat it wrote in demo/public (mode, size, path):");
const walk = (dir, rel = "") => {
  for (const n of readdirSync(dir).sort()) {
    const abs = path.join(dir, n);
    const st = statSync(abs);
    const r = rel ? `${rel}/${n}` : n;
    console.log(`  ${(st.mode & 0o777).toString(8).padStart(4, "0")} ${String(st.isDirectory() ? "-" : st.size).padStart(5)}  ${r}${st.isDirectory() ? "/" : ""}`);
    if (st.isDirectory()) walk(abs, r);
  }
};
walk(path.join(demo, "public"));
console.log("\ndemo/public/nextcloud/nextcloud.env (demo values, not real secrets):");
process.stdout.write(readFileSync(path.join(demo, "public/nextcloud/nextcloud.env"), "utf8").replace(/^/gm, "  "));
status ||= await run("sync", "-v");
console.log(`\nAppRole logins across the three runs: ${vault.countRequests({ path: /login$/ })} (the token is cached in agent-only/token and reused)`);
await vault.close();
process.exitCode = status;
