/**
 * The AppRole material in agent-only/ over time: a wrapped secret_id whose state record was lost,
 * a login failing right after the unwrap (removeSecretIdFile), AppRole files that went missing
 * while a cached token hid it, and files other users could read. The built CLI against the double.
 */
import { chmod, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { baseLayout, makeTree } from "./helpers.js";
import type { Tree } from "./helpers.js";

let trees: Tree[] = [];
afterEach(async () => {
  await Promise.all(trees.map((t) => t.cleanup()));
  trees = [];
});

async function tree(approle: Record<string, unknown> = {}): Promise<Tree> {
  const t = await makeTree();
  trees.push(t);
  t.double.kvPut("secret", "app", { password: "p" });
  const l = baseLayout();
  Object.assign((l.auth as { approle: Record<string, unknown> }).approle, approle);
  await t.writeLayout(l);
  return t;
}

const secretIdFile = (t: Tree) => path.join(t.agentDir, "approle/secret_id");
const roleIdFile = (t: Tree) => path.join(t.agentDir, "approle/role_id");

async function putWrapped(t: Tree): Promise<string> {
  const w = t.double.generateSecretId("app", { wrapTtl: 300 });
  if (!("wrappingToken" in w)) throw new Error("expected a wrapping token");
  await writeFile(secretIdFile(t), w.wrappingToken + "\n", { mode: 0o600 });
  return w.wrappingToken;
}

interface Finding {
  check: string;
  severity: string;
  subject: string;
  message: string;
}
async function findings(t: Tree, args: string[] = []): Promise<{ code: number | null; approle: Finding[] }> {
  const r = await t.run(["check", "--json", ...args]);
  const report = JSON.parse(r.stdout) as { findings: Finding[] };
  return { code: r.code, approle: report.findings.filter((f) => f.check === "approle") };
}

describe("wrapped secret_id", () => {
  it("state.json lost after a successful wrapped run: the next login still works, no interception alarm", async () => {
    const t = await tree({ secretIdWrapped: true });
    const wrapping = await putWrapped(t);
    expect((await t.run(["sync"])).code).toBe(0);
    const plain = (await readFile(secretIdFile(t), "utf8")).trim();
    expect(plain).not.toBe(wrapping);
    // Lose the state, and the token with it, so the next run must log in.
    await rm(path.join(t.agentDir, "state.json"));
    await rm(path.join(t.agentDir, "token"));
    t.double.clearRequests();
    const r = await t.run(["sync"]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(t.double.countRequests({ path: "sys/wrapping/unwrap" })).toBe(0);
    expect(t.double.countRequests({ path: "auth/approle/login" })).toBe(1);
    expect((await readFile(secretIdFile(t), "utf8")).trim()).toBe(plain);
    // The plain secret_id is recorded again: a later login does not even look it up.
    await rm(path.join(t.agentDir, "token"));
    t.double.clearRequests();
    expect((await t.run(["sync"])).code).toBe(0);
    expect(t.double.countRequests({ path: "sys/wrapping/lookup" })).toBe(0);
    expect(t.double.countRequests({ path: "auth/approle/login" })).toBe(1);
  });

  it("a used wrapping token that does not log in either is still reported as a possible interception", async () => {
    const t = await tree({ secretIdWrapped: true });
    const wrapping = await putWrapped(t);
    await fetch(`${t.double.url}/v1/sys/wrapping/unwrap`, { method: "POST", headers: { "X-Vault-Token": wrapping } });
    const r = await t.run(["sync"]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/holds a wrapping token that is not valid, expired or already used \(nor does it log in as a plain secret_id\).*intercepted/);
    expect(r.stderr).not.toContain(wrapping);
  });

  it("removeSecretIdFile: a login failing right after the unwrap keeps the secret_id; the next run logs in and then removes it", async () => {
    const t = await tree({ secretIdWrapped: true, removeSecretIdFile: true });
    const wrapping = await putWrapped(t);
    t.double.addFault({ path: "auth/approle/login", status: 500 });
    const r1 = await t.run(["sync"]);
    expect(r1.code).toBe(3);
    expect(t.double.countRequests({ path: "sys/wrapping/unwrap" })).toBe(1);
    // The unwrapped secret_id is kept privately in the file until a login succeeds.
    const kept = (await readFile(secretIdFile(t), "utf8")).trim();
    expect(kept).not.toBe(wrapping);
    expect((await stat(secretIdFile(t))).mode & 0o777).toBe(0o600);
    t.double.clearFaults();
    const r2 = await t.run(["sync"]);
    expect(r2).toMatchObject({ code: 0, stderr: "" });
    expect(t.double.countRequests({ path: "sys/wrapping/unwrap" })).toBe(1);
    await expect(stat(secretIdFile(t))).rejects.toThrow(/ENOENT/);
    expect(await readFile(path.join(t.publicDir, "app.env"), "utf8")).toBe("DB_PASSWORD='p'\n");
  });
});

describe("AppRole files while a token is cached", () => {
  it("a missing role_id or secret_id file is a check failure and a sync warning (not silent until the max TTL)", async () => {
    const t = await tree();
    expect((await t.run(["sync"])).code).toBe(0);
    const ok = await findings(t);
    expect(ok.code).toBe(0);
    expect(ok.approle.map((f) => [f.subject, f.severity])).toEqual([
      ["agent-only/approle/role_id", "ok"],
      ["agent-only/approle/secret_id", "ok"],
    ]);
    await rm(roleIdFile(t));
    const c = await findings(t);
    expect(c.code).toBe(1);
    expect(c.approle).toContainEqual(expect.objectContaining({ subject: "agent-only/approle/role_id", severity: "error", message: expect.stringMatching(/does not exist/) as string }));
    expect((await findings(t, ["--offline"])).code).toBe(1);
    const r = await t.run(["sync"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warn: the role_id file agent-only\/approle\/role_id does not exist: the cached token works until it can no longer be renewed, then the AppRole login fails/);
    // Unreadable (a directory where the file should be).
    await writeFile(roleIdFile(t), t.roleId + "\n", { mode: 0o600 });
    await rm(secretIdFile(t));
    await mkdir(secretIdFile(t));
    const u = await findings(t);
    expect(u.code).toBe(1);
    expect(u.approle).toContainEqual(expect.objectContaining({ subject: "agent-only/approle/secret_id", severity: "error", message: expect.stringMatching(/cannot be read \(EISDIR: is a directory: the layout's auth\.approle\.secretIdFile must name a file, not a directory\)/) as string }));
    expect((await t.run(["sync"])).stderr).toMatch(/warn: the secret_id file agent-only\/approle\/secret_id cannot be read \(EISDIR: is a directory: /);
  });

  it("with removeSecretIdFile a missing secret_id file is expected: check passes, sync is silent", async () => {
    const t = await tree({ removeSecretIdFile: true });
    expect((await t.run(["sync"])).code).toBe(0);
    await expect(stat(secretIdFile(t))).rejects.toThrow(/ENOENT/);
    const c = await findings(t);
    expect(c.code).toBe(0);
    expect(c.approle).toContainEqual(expect.objectContaining({ subject: "agent-only/approle/secret_id", severity: "ok", message: expect.stringMatching(/removeSecretIdFile/) as string }));
    expect(await t.run(["sync"])).toMatchObject({ code: 0, stderr: "" });
  });

  it("files readable by others: check flags them, sync sets 0600 (logged at info)", async () => {
    const t = await tree();
    expect((await t.run(["sync"])).code).toBe(0);
    await chmod(secretIdFile(t), 0o644);
    await chmod(roleIdFile(t), 0o640);
    const c = await findings(t, ["--offline"]);
    expect(c.code).toBe(1);
    expect(c.approle).toContainEqual(expect.objectContaining({ subject: "agent-only/approle/secret_id", severity: "error", message: expect.stringMatching(/mode is 0644, expected 0600/) as string }));
    expect(c.approle).toContainEqual(expect.objectContaining({ subject: "agent-only/approle/role_id", severity: "error", message: expect.stringMatching(/mode is 0640/) as string }));
    // check writes nothing.
    expect((await stat(secretIdFile(t))).mode & 0o777).toBe(0o644);
    expect(await t.run(["sync"])).toMatchObject({ code: 0, stderr: "" });
    expect((await stat(secretIdFile(t))).mode & 0o777).toBe(0o600);
    expect((await stat(roleIdFile(t))).mode & 0o777).toBe(0o600);
    await chmod(secretIdFile(t), 0o604);
    const v = await t.run(["sync", "-v"]);
    expect(v.stderr).toMatch(/set agent-only\/approle\/secret_id to mode 0600 \(was 0604\)/);
    expect((await findings(t)).code).toBe(0);
    // A dry run changes nothing.
    await chmod(secretIdFile(t), 0o644);
    expect((await t.run(["sync", "--dry-run"])).code).toBe(0);
    expect((await stat(secretIdFile(t))).mode & 0o777).toBe(0o644);
  });
});
