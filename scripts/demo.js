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
// There are no containers to restart here: each hook only says what it would have run.
for (const [name, hook] of Object.entries(layout.hooks ?? {})) {
  hook.command = ["echo", `(demo) hook ${name} would run: ${hook.command.join(" ")}`];
}
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
vault.mountPki("pki_int");
vault.addPkiRole("pki_int", "homelab", { allowedDomains: ["home.arpa"], allowSubdomains: true, allowIpSans: true, maxTtl: 90 * 86400 });
vault.mountDatabase("database");
vault.addDbRole("database", "nextcloud", { defaultTtl: 3600, maxTtl: 86400 });
const { roleId } = vault.addAppRole({ roleName: "homelab", policies: ["homelab"], tokenTtl: 3600, tokenMaxTtl: 86400 });
const sid = vault.generateSecretId("homelab");
writeFileSync(path.join(demo, "agent-only/approle/role_id"), roleId + "\n", { mode: 0o600 });
writeFileSync(path.join(demo, "agent-only/approle/secret_id"), sid.secretId + "\n", { mode: 0o600 });

// The double runs in this process, so the CLI must run asynchronously (spawnSync would block it).
const run = (...args) => runCaptured(false, ...args);
const runCaptured = (capture, ...args) =>
  new Promise((resolve) => {
    console.log(`\n$ vault-render ${args.join(" ")}${capture ? "   # output captured" : ""}`);
    const child = spawn(process.execPath, [path.join(root, "bin/vault-render.js"), "--layout", "demo/vault-layout.json", ...args], {
      cwd: root,
      env: { ...process.env, VAULT_ADDR: vault.url },
      stdio: ["ignore", capture ? "pipe" : "inherit", "inherit"],
    });
    let out = "";
    child.stdout?.on("data", (d) => (out += d));
    child.on("close", (code) => {
      console.log(`(exit ${code})`);
      resolve(capture ? out : code);
    });
  });

console.log(`Vault double listening on ${vault.url}; demo tree in ./demo`);
// The AppRole gets exactly the least-privilege policy vault-render derives from the layout.
const hcl = await runCaptured(true, "policy");
vault.addPolicy("homelab", hcl);
console.log(`policy "homelab": ${hcl.split("\n").filter((l) => l.startsWith("path ")).length} exact paths (vault-render policy)`);
const statuses = [await run("sync", "--dry-run"), await run("sync", "-v")];
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
statuses.push(await run("sync", "-v"), await run("status"), await run("check"));
console.log(`\nAppRole logins across all runs: ${vault.countRequests({ path: /login$/ })} (the token is cached in agent-only/token and reused)`);
await vault.close();
console.log("\nThe tree stays in ./demo; `npm run sandbox -- --dir demo` serves it again (same role_id, a fresh secret_id).");
process.exitCode = statuses.find((c) => c !== 0) ?? 0;
