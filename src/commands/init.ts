import type { Command } from "commander";
import type { CommandContext } from "./context.js";

export function registerInit(program: Command, ctx: CommandContext): void {
  program
    .command("init")
    .description("create the tree (public/, agent-only/approle/ with their modes), a starter layout and its schema; print the policy and the vault commands for the AppRole")
    .argument("[dir]", "the tree's directory (created if missing)", ".")
    .option("--json", "print what was created, kept and fixed, the policy and the commands as JSON")
    .option("--role <name>", "AppRole (and policy) name (default: the directory's name, else vault-render)")
    .option("--mount <path>", "AppRole auth mount (default approle)")
    .option("--kv-mount <path>", "KV v2 mount of the starter source (default secret)")
    .option("--vault-addr <url>", "Vault address to write into the layout (VAULT_ADDR still overrides it)")
    .option("--role-id-file <file>", "copy this role_id into agent-only/approle/role_id (0600; never over an existing file)")
    .option("--secret-id-file <file>", "copy this secret_id (or wrapping token) into agent-only/approle/secret_id (0600; never over an existing file)")
    .option("--plain-secret-id", "the secret_id is not response-wrapped (secretIdWrapped: false)")
    .action(async (dir: string, _opts: unknown, cmd: Command) => {
      const [{ parseOptions, initOptions }, { runInit, renderInit }] = await Promise.all([import("./options.js"), import("../core/init/init.js")]);
      const o = parseOptions(initOptions, cmd.optsWithGlobals());
      const res = await runInit({
        dir,
        env: ctx.env,
        role: o.role,
        mount: o.mount,
        kvMount: o.kvMount,
        vaultAddr: o.vaultAddr,
        roleIdFile: o.roleIdFile,
        secretIdFile: o.secretIdFile,
        plainSecretId: o.plainSecretId,
      });
      ctx.stdout.write(o.json ? JSON.stringify(res, null, 2) + "\n" : renderInit(res));
      for (const w of res.warnings) ctx.stderr.write(ctx.redactor.redact(`vault-render: warn: ${w}`) + "\n");
      ctx.setExit(0);
    });
}
