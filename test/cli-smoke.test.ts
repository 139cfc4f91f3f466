/**
 * One child-process run of every command through the production bin (bin/vault-render.js →
 * dist/cli.js), as cron, a shell or a monitoring script sees it: the exit status, what goes to
 * stdout and what to stderr. Everything else about the commands is tested in-process; sync and
 * check also run as children in test/bundle.test.ts, watch in test/watch.integration.test.ts.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { APP_POLICY, ROOT, baseLayout, runCli, trackedTrees } from "./helpers.js";

const tree = trackedTrees(afterEach);

describe("the built CLI, one child process per command", () => {
  it("--version, schema and policy print to stdout and exit 0, with nothing on stderr", async () => {
    const { version } = JSON.parse(await readFile(path.join(ROOT, "package.json"), "utf8")) as { version: string };
    expect(await runCli(["--version"])).toEqual({ code: 0, signal: null, stdout: `${version}\n`, stderr: "" });
    const schema = await runCli(["schema"]);
    expect(schema).toMatchObject({ code: 0, signal: null, stderr: "" });
    expect(schema.stdout).toBe(await readFile(path.join(ROOT, "dist", "vault-layout.schema.json"), "utf8"));
    const t = await tree();
    const policy = await t.run(["policy"], { mode: "child" });
    expect(policy).toMatchObject({ code: 0, signal: null, stderr: "" });
    expect(policy.stdout).toMatch(/^path "secret\/data\/app" \{\n {2}capabilities = \["read"\]\n\}$/m);
  });

  it("sync, status, status --json and rotate: exit codes, stdout for reports, stderr for logs", async () => {
    const t = await tree({ policy: `${APP_POLICY}\npath "secret/data/app" { capabilities = ["read", "update"] }\n` });
    t.double.kvPut("secret", "app", { password: "pw-1" });
    await t.writeLayout({ ...baseLayout(), sources: { app: { type: "kv", mount: "secret", path: "app", generate: { key: "password", length: 16 } } } });
    expect(await t.run(["sync"], { mode: "child" })).toEqual({ code: 0, signal: null, stdout: "", stderr: "" });
    const status = await t.run(["status"], { mode: "child" });
    expect(status).toMatchObject({ code: 0, signal: null, stderr: "" });
    expect(status.stdout).toMatch(/app\.env/);
    const json = await t.run(["status", "--json"], { mode: "child" });
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(expect.any(Object));
    const rotate = await t.run(["rotate", "app.env"], { mode: "child" });
    expect({ code: rotate.code, signal: rotate.signal, stdout: rotate.stdout }, rotate.stderr).toEqual({ code: 0, signal: null, stdout: "" });
    expect(rotate.stderr).toMatch(/app\.env/);
    expect(await readFile(path.join(t.publicDir, "app.env"), "utf8")).not.toContain("pw-1");
  });

  it("a usage error exits 2, Vault unreachable exits 3, each with one line on stderr", async () => {
    const t = await tree();
    const usage = await t.run(["sync", "--lock-timeout", "soon"], { mode: "child" });
    expect({ code: usage.code, stdout: usage.stdout }).toEqual({ code: 2, stdout: "" });
    expect(usage.stderr).toMatch(/^vault-render: --lock-timeout: "soon" is not a duration/);
    const down = await t.run(["sync"], { mode: "child", env: { VAULT_ADDR: "http://127.0.0.1:1" } });
    expect({ code: down.code, stdout: down.stdout }).toEqual({ code: 3, stdout: "" });
    expect(down.stderr.trim().split("\n")).toHaveLength(1);
  });
});
