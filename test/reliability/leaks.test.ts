/**
 * No leaks (docs/reliability.md §7): every command, including failure paths, at the most verbose
 * level (--debug, both log formats) with canary values for a secret, the token, the role_id, the
 * secret_id and a wrapping token. None may appear in stdout, stderr, the state or any file outside
 * the intended ones (the output files for the secret, agent-only/token, agent-only/approle/*).
 */
import { readFile, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTree, baseLayout } from "../helpers.js";
import type { RunResult, Tree } from "../helpers.js";
import { allText, retryWaitsClock, scaled, spawnCli, STACK_RE } from "./support.js";

const SECRET = "CANARY-secret-value-9f8e7d";
const ROLE_ID = "CANARY-role-id-4b3a2918";
const POLICY = `
path "secret/data/*" { capabilities = ["read", "create", "update"] }
path "sys/internal/ui/mounts/*" { capabilities = ["read"] }
path "auth/approle/role/app/secret-id" { capabilities = ["update"] }
path "auth/approle/role/app/secret-id/lookup" { capabilities = ["update"] }
`;

let t: Tree;
let wrappingToken = "";
let secretIds: string[] = [];
const runs: Array<[string, RunResult]> = [];
beforeAll(async () => {
  t = await makeTree({ policy: POLICY, mode: "in-process" });
  // A canary role_id (a second role whose role_id we choose), a wrapped secret_id for it.
  t.double.addAppRole({ roleName: "canary", roleId: ROLE_ID, policies: ["app"], tokenTtl: 3600, tokenMaxTtl: 86400 });
  await writeFile(path.join(t.agentDir, "approle/role_id"), ROLE_ID + "\n");
  const w = t.double.generateSecretId("canary", { wrapTtl: 300 });
  if (!("wrappingToken" in w)) throw new Error("expected a wrapping token");
  wrappingToken = w.wrappingToken;
  await writeFile(path.join(t.agentDir, "approle/secret_id"), wrappingToken + "\n");
  t.double.kvPut("secret", "app", { password: SECRET, user: "app", gen: "old-generated-value-1234" });
  const layout = baseLayout({
    auth: { approle: { roleIdFile: "approle/role_id", secretIdFile: "approle/secret_id", secretIdWrapped: true, roleName: "canary" } },
    sources: { app: { type: "kv", mount: "secret", path: "app" }, gen: { type: "kv", mount: "secret", path: "app", kvVersion: 2, generate: { key: "gen", length: 24 } } },
    outputs: [
      { file: "app.env", format: "env", keys: { DB_PASSWORD: "app.password" } },
      { file: "pw", format: "raw", value: "app.password" },
      { file: "conf.json", format: "json", keys: { p: "app.password" } },
      { file: "t.conf", format: "template", inline: "p={{ app.password }}\n" },
      { file: "gen", format: "raw", value: "gen.gen" },
    ],
  });
  await t.writeLayout(layout);
  // In-process (argv → main, with the streams it is given captured), and whatever anything in this
  // process writes to its own stdout and stderr meanwhile (a library's console output, which a
  // child's pipes would have caught), checked for canaries as well. Retry waits are recorded, not slept.
  const go = async (name: string, args: string[], env: Record<string, string> = {}) => {
    for (const fmt of ["pretty", "json"]) runs.push([`${name} (${fmt})`, await t.run(["--debug", "--log-format", fmt, ...args], { env, clock: retryWaitsClock() })]);
  };
  const stray = { text: "" };
  const writes = [process.stdout, process.stderr].map((stream) => {
    const original = stream.write.bind(stream) as (...a: unknown[]) => boolean;
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      stray.text += typeof chunk === "string" ? chunk : Buffer.isBuffer(chunk) ? chunk.toString("utf8") : String(chunk);
      return original(chunk, ...rest);
    });
    return () => {
      stream.write = original;
    };
  });
  try {
    await go("sync", ["sync"]);
    await go("sync --dry-run", ["sync", "--dry-run"]);
    await go("check", ["check"]);
    await go("check --offline", ["check", "--offline"]);
    await go("status", ["status"]);
    await go("policy", ["policy"]);
    await go("rotate gen", ["rotate", "gen"]);
    await go("rotate --secret-id", ["rotate", "--secret-id"]);
    // Failure paths.
    t.double.kvPut("secret", "app", { password: SECRET + "-2", user: "app", gen: "x" });
    await go("enospc", ["sync"], { VAULT_RENDER_TEST_FAULT: "enospc:pw" });
    for (const f of [{ status: 500 }, { html: true }, { malformed: true }, { drop: true }, { status: 403 }, { status: 429, headers: { "Retry-After": "0" } }, { redirectTo: "http://127.0.0.1:9" }]) {
      t.double.addFault({ path: "secret/data/app", ...f });
      await go(`fault ${JSON.stringify(f)}`, ["sync"]);
      t.double.clearFaults();
    }
    t.double.addFault({ path: "auth/token/lookup-self", status: 403, body: JSON.stringify({ errors: ["permission denied", "invalid token"] }) });
    t.double.addFault({ path: /login$/, status: 500 });
    await go("login fails (500)", ["sync"]);
    t.double.clearFaults();
    t.double.seal();
    await go("sealed", ["sync"]);
    t.double.unseal();
    t.double.setStandby(true);
    await go("standby", ["sync"]);
    t.double.setStandby(false);
    await go("tls to an http server", ["sync"], { VAULT_ADDR: t.double.url.replace("http:", "https:") });
    await go("unreachable", ["sync"], { VAULT_ADDR: "http://127.0.0.1:9" });
    const lock = spawnCli(t, ["sync"]);
    await go("lock timeout", ["sync", "--lock-timeout", "1ms"]);
    await lock.done;
    await symlink("/etc/hostname", path.join(t.publicDir, "planted"));
    await go("bad layout", ["sync"], { VAULT_RENDER_LAYOUT: "" });
    // The cached token is revoked and the secret_id is wrong: login fails.
    const token = (await readFile(path.join(t.agentDir, "token"), "utf8")).trim();
    secretIds.push((await readFile(path.join(t.agentDir, "approle/secret_id"), "utf8")).trim());
    t.double.revokeToken(token);
    await writeFile(path.join(t.agentDir, "approle/secret_id"), "CANARY-wrong-secret-id-0000\n");
    secretIds.push("CANARY-wrong-secret-id-0000");
    await go("login refused", ["sync"]);
    // A used wrapping token.
    await writeFile(path.join(t.agentDir, "approle/secret_id"), wrappingToken + "\n");
    await writeFile(path.join(t.agentDir, "state.json"), "{}");
    await go("used wrapping token", ["sync"]);
    secretIds = secretIds.concat([token]);
  } finally {
    for (const restore of writes) restore();
  }
  runs.push(["this process's own stdout and stderr", { code: 0, signal: null, stdout: stray.text, stderr: "" }]);
}, scaled(180_000));
afterAll(async () => {
  await t?.cleanup();
});

function canaries(): string[] {
  return [SECRET, SECRET + "-2", "old-generated-value-1234", ROLE_ID, wrappingToken, ...secretIds];
}

describe("no leaks", () => {
  it("ran every command and failure path", () => {
    expect(runs.length).toBeGreaterThanOrEqual(50);
    // The canaries were really in play: the first sync unwrapped the wrapping token and logged in with the canary role_id.
    expect(runs[0]?.[1].code).toBe(0);
    expect(t.double.countRequests({ path: "sys/wrapping/unwrap" })).toBeGreaterThanOrEqual(1);
    expect(runs.filter(([, r]) => r.code !== 0).length).toBeGreaterThan(20);
  });

  it("no canary in any stdout or stderr, no raw HTTP client error", () => {
    const tokenNow = secretIds[secretIds.length - 1] as string;
    for (const [name, r] of runs) {
      const out = r.stdout + r.stderr;
      for (const c of [...canaries(), tokenNow]) if (out.includes(c)) throw new Error(`${name}: printed a canary (${c.slice(0, 12)}…)`);
      expect({ name, raw: /AxiosError|x-vault-token|"headers"|"config"|secret_id"\s*:/i.test(out) }).toEqual({ name, raw: false });
    }
  });

  it("only --debug prints stacks, and none of them come from the HTTP client", () => {
    for (const [name, r] of runs) {
      if (STACK_RE.test(r.stderr)) expect({ name, axios: /axios|node-vault/.test(r.stderr) }).toEqual({ name, axios: false });
    }
  });

  it("no canary in any file outside the intended ones (state, journal, leases, lock, temp files)", async () => {
    const intended = (rel: string) => rel === "agent-only/token" || rel.startsWith("agent-only/approle/") || rel.startsWith("public/");
    const files = await allText(t.dir, intended);
    expect(files.map(([f]) => f)).toEqual(expect.arrayContaining(["agent-only/state.json", "vault-layout.json"]));
    for (const [f, text] of files) for (const c of canaries()) if (text.includes(c)) throw new Error(`${f} contains a canary (${c.slice(0, 12)}…)`);
    // The secret is only in the output files.
    const pub = await allText(path.join(t.dir, "public"));
    expect(pub.some(([, text]) => text.includes(SECRET))).toBe(true);
  });
});
