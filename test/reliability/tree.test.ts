/**
 * The tree as others may have touched it (docs/reliability.md §7): symlinked and hard-linked
 * paths, hand edits, a tampered state, chmod'ed directories, agent-only/ reached through a link
 * into public/, a directory swapped for a symlink while sync runs, a rename failing in the middle
 * of a certificate set commit. Real files, the CLI (in-process: argv → main), and a real racing
 * process.
 */
import { execFileSync } from "node:child_process";
import { X509Certificate, createHmac, createPrivateKey } from "node:crypto";
import { chmod, link, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { baseLayout, makeTree } from "../helpers.js";
import type { Tree } from "../helpers.js";
import { STACK_RE, scaled, tempFiles } from "./support.js";
import { describeRace } from "./tree-race.js";

let trees: Tree[] = [];
const dirs: string[] = [];
const immutable: string[] = [];
afterEach(async () => {
  for (const f of immutable.splice(0)) chattr("-i", f);
  await Promise.all(trees.map((x) => x.cleanup()));
  trees = [];
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const POLICY = `
path "secret/data/*" { capabilities = ["read"] }
path "sys/internal/ui/mounts/*" { capabilities = ["read"] }
path "pki_int/issue/web" { capabilities = ["update"] }
`;

function chattr(flag: string, file: string): boolean {
  try {
    execFileSync("chattr", [flag, file], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
/** Can this process make a file immutable (root on a filesystem that supports it)? */
const canChattr = (() => {
  if (process.getuid?.() !== 0) return false;
  const probe = path.join(tmpdir(), `vr-tree-chattr-${process.pid}`);
  try {
    execFileSync("touch", [probe]);
    return chattr("+i", probe) && chattr("-i", probe);
  } finally {
    rmSync(probe, { force: true });
  }
})();

async function tree(): Promise<Tree> {
  const t = await makeTree({ policy: POLICY, mode: "in-process" });
  trees.push(t);
  return t;
}

/** A directory outside the tree (a different temp dir), removed after the test. */
async function outsideDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), "vr-outside-"));
  dirs.push(d);
  return d;
}

function expectCleanLines(stderr: string) {
  expect(stderr).not.toMatch(STACK_RE);
  for (const l of stderr.trim().split("\n").filter(Boolean)) expect(l).toMatch(/^vault-render: /);
}

interface StateFile {
  outputs: Record<string, { hash: string; size: number }>;
  pki: Record<string, { serial: string; cert?: string; chain?: string }>;
}
const readState = async (t: Tree) => JSON.parse(await readFile(path.join(t.agentDir, "state.json"), "utf8")) as StateFile;
const keyedHash = async (t: Tree, bytes: Buffer) => createHmac("sha256", await readFile(path.join(t.agentDir, "state.key"))).update(bytes).digest("hex");

describe("pruning and temp cleanup never leave public/", () => {
  async function twoFiles(t: Tree) {
    t.double.kvPut("secret", "app", { a: "alpha", b: "beta" });
    const outputs = [
      { file: "keep.txt", format: "raw", value: "app.a" },
      { file: "sub/a.txt", format: "raw", value: "app.a" },
      { file: "b.txt", format: "raw", value: "app.b" },
    ];
    await t.writeLayout(baseLayout({ outputs }));
    expect((await t.run(["sync"])).code).toBe(0);
    return outputs;
  }

  it("a file removed from the layout behind a symlinked directory is not deleted outside public/", async () => {
    const t = await tree();
    const outputs = await twoFiles(t);
    const outside = await outsideDir();
    // public/sub becomes a link to a directory outside holding the same bytes.
    await writeFile(path.join(outside, "a.txt"), "alpha");
    await rm(path.join(t.publicDir, "sub"), { recursive: true });
    await symlink(outside, path.join(t.publicDir, "sub"));
    await t.writeLayout(baseLayout({ outputs: outputs.filter((o) => o.file !== "sub/a.txt") }));
    const r = await t.run(["sync"]);
    expect(await readFile(path.join(outside, "a.txt"), "utf8")).toBe("alpha");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/sub\/a\.txt: refusing to write through the symlinked directory .*sub/);
    expectCleanLines(r.stderr);
  });

  it("a hand-edited file dropped from the layout is kept with a warning; an unchanged one is pruned", async () => {
    const t = await tree();
    const outputs = await twoFiles(t);
    await writeFile(path.join(t.publicDir, "sub/a.txt"), "edited by hand");
    await t.writeLayout(baseLayout({ outputs: outputs.filter((o) => o.file === "keep.txt") }));
    const r = await t.run(["sync"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/kept sub\/a\.txt: it left the layout but was changed since vault-render wrote it/);
    expect(await readFile(path.join(t.publicDir, "sub/a.txt"), "utf8")).toBe("edited by hand");
    await expect(stat(path.join(t.publicDir, "b.txt"))).rejects.toThrow(/ENOENT/);
    const state = await readState(t);
    expect(Object.keys(state.outputs).sort()).toEqual(["keep.txt"]);
    // Not owned any more: the next run neither deletes nor warns.
    const again = await t.run(["sync"]);
    expect(again).toMatchObject({ code: 0, stderr: "" });
    expect(await readFile(path.join(t.publicDir, "sub/a.txt"), "utf8")).toBe("edited by hand");
  });

  it("paths read from state are validated like layout paths: `..` and absolute records are ignored with a warning", async () => {
    const t = await tree();
    await twoFiles(t);
    const outside = await outsideDir();
    await writeFile(path.join(outside, "victim"), "alpha");
    const state = JSON.parse(await readFile(path.join(t.agentDir, "state.json"), "utf8")) as { outputs: Record<string, unknown> };
    const rec = { hash: await keyedHash(t, Buffer.from("alpha")), size: 5, sources: {}, writtenAt: new Date().toISOString(), lastError: null };
    const rel = path.relative(t.publicDir, path.join(outside, "victim"));
    expect(rel.startsWith("..")).toBe(true);
    state.outputs[rel] = rec;
    state.outputs[path.join(outside, "victim")] = rec;
    await writeFile(path.join(t.agentDir, "state.json"), JSON.stringify(state), { mode: 0o600 });
    const r = await t.run(["sync"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/ignoring the state record for ".*victim": its path must not contain "\." or "\.\." segments/);
    expect(r.stderr).toMatch(/ignoring the state record for ".*victim": its path must be relative/);
    expect(await readFile(path.join(outside, "victim"), "utf8")).toBe("alpha");
    expect(Object.keys((await readState(t)).outputs).sort()).toEqual(["b.txt", "keep.txt", "sub/a.txt"]);
  });

  it("temp cleanup does not enter a directory replaced by a symlink", async () => {
    const t = await tree();
    await twoFiles(t);
    const outside = await outsideDir();
    const victim = path.join(outside, ".vault-render.tmp-1-abcdef");
    await writeFile(victim, "not ours");
    await rm(path.join(t.publicDir, "sub"), { recursive: true });
    await symlink(outside, path.join(t.publicDir, "sub"));
    // A real stale temp in public/ itself is still cleaned.
    await writeFile(path.join(t.publicDir, ".vault-render.tmp-1-123456"), "stale");
    const r = await t.run(["sync"]);
    expect(r.code).toBe(1);
    expectCleanLines(r.stderr);
    expect(await readFile(victim, "utf8")).toBe("not ours");
    await expect(stat(path.join(t.publicDir, ".vault-render.tmp-1-123456"))).rejects.toThrow(/ENOENT/);
  });
});

describe("directory modes", () => {
  it("sync sets every directory on the way to an output back to 0755 (logged); check then has nothing to report", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { a: "alpha" });
    await t.writeLayout(baseLayout({ outputs: [{ file: "sub/deeper/a.txt", format: "raw", value: "app.a" }] }));
    expect((await t.run(["sync"])).code).toBe(0);
    await chmod(path.join(t.publicDir, "sub"), 0o700);
    await chmod(path.join(t.publicDir, "sub/deeper"), 0o750);
    const c1 = await t.run(["check", "--offline"]);
    expect(c1.stdout).toMatch(/mode +sub\/ +directory mode is 0700, expected 0755/);
    const r = await t.run(["sync", "-v"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/set directory .*public\/sub to mode 0755 \(it was 0700\)/);
    expect(r.stderr).toMatch(/set directory .*public\/sub\/deeper to mode 0755 \(it was 0750\)/);
    expect((await stat(path.join(t.publicDir, "sub"))).mode & 0o7777).toBe(0o755);
    expect((await stat(path.join(t.publicDir, "sub/deeper"))).mode & 0o7777).toBe(0o755);
    const c2 = await t.run(["check", "--offline"]);
    expect(c2.stdout).not.toMatch(/directory mode/);
  });
});

describe("public/ and agent-only/ separate after resolving symlinks", () => {
  it("agent-only/ through a link into public/, or public/ through a link into agent-only/: exit 2 for every command, nothing written", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "pw" });
    await mkdir(path.join(t.publicDir, "private"), { recursive: true });
    await rename(t.agentDir, path.join(t.publicDir, "private/agent"));
    await symlink(path.join(t.publicDir, "private/agent"), path.join(t.dir, "ao-link"));
    await t.writeLayout(baseLayout({ paths: { public: "public", agentOnly: "ao-link" } }));
    for (const cmd of [["sync"], ["sync", "--dry-run"], ["check"], ["check", "--offline"], ["status"], ["rotate", "app.env"], ["policy"]]) {
      const r = await t.run(cmd);
      expect(r.code, cmd.join(" ")).toBe(2);
      expect(r.stderr).toMatch(/public\/ \(.*\/public\) and agent-only\/ \(.*\/ao-link -> .*\/public\/private\/agent\) overlap once symlinks are resolved/);
      expectCleanLines(r.stderr);
    }
    expect(await readdir(path.join(t.publicDir, "private/agent"))).toEqual(["approle"]);
    expect(t.double.requests.length).toBe(0);
    // The other way round: public/ a link to a directory inside agent-only/.
    await rename(path.join(t.publicDir, "private/agent"), t.agentDir);
    await rm(t.publicDir, { recursive: true });
    await mkdir(path.join(t.agentDir, "pub"), { mode: 0o700 });
    await symlink(path.join(t.agentDir, "pub"), path.join(t.dir, "pub-link"));
    await t.writeLayout(baseLayout({ paths: { public: "pub-link", agentOnly: "agent-only" } }));
    const r = await t.run(["sync"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/public\/ \(.*\/pub-link -> .*\/agent-only\/pub\) and agent-only\/ \(.*\/agent-only\) overlap/);
    expect(await readdir(path.join(t.agentDir, "pub"))).toEqual([]);
  });
});

// A short race here; the CI size (60 syncs, STRESS=1: 600) in tree-race.slow.test.ts.
describeRace(10, scaled(90_000));

// --- certificate sets ---------------------------------------------------------------------

const HOOK_LOG = "hooks.log";
function pkiLayout(): Record<string, unknown> {
  return baseLayout({
    sources: {},
    hooks: { reload: { command: `echo "$VAULT_RENDER_CHANGED_FILES" | tr '\\n' ' ' >> ${HOOK_LOG}; echo >> ${HOOK_LOG}`, shell: true } },
    outputs: [{ format: "pki", dir: "certs/web", mount: "pki_int", role: "web", commonName: "web.home.arpa", ttl: "72h", renewBefore: "24h", hooks: ["reload"] }],
  });
}
async function pkiTree(): Promise<Tree> {
  const t = await tree();
  t.double.mountPki("pki_int");
  // EC keys: nothing here depends on the key type, and the double's RSA key generation (0.3-1.5 s a key) would be the test's time.
  t.double.addPkiRole("pki_int", "web", { allowedDomains: ["home.arpa"], allowSubdomains: true, maxTtl: 30 * 86400, keyType: "ec" });
  await t.writeLayout(pkiLayout());
  expect((await t.run(["sync"])).code).toBe(0);
  return t;
}
const issued = (t: Tree) => t.double.countRequests({ path: "pki_int/issue/web" });
const certDir = (t: Tree) => path.join(t.publicDir, "certs/web");
const hookRuns = async (t: Tree) => (await readFile(path.join(t.dir, HOOK_LOG), "utf8").catch(() => "")).split("\n").filter(Boolean);

/** The set on disk is consistent: the key matches, ca.pem is a chain for it, fullchain = cert + ca, all 0644 with one link. */
async function expectConsistentSet(t: Tree) {
  const d = certDir(t);
  const [cert, key, ca, full] = await Promise.all(["cert.pem", "key.pem", "ca.pem", "fullchain.pem"].map((f) => readFile(path.join(d, f), "utf8")));
  const leaf = new X509Certificate(cert as string);
  expect(leaf.checkPrivateKey(createPrivateKey(key as string))).toBe(true);
  expect(leaf.checkIssued(new X509Certificate(ca as string))).toBe(true);
  expect(full).toBe((cert as string) + (ca as string));
  for (const f of ["cert.pem", "key.pem", "ca.pem", "fullchain.pem"]) {
    const st = await stat(path.join(d, f));
    expect(st.mode & 0o7777, f).toBe(0o644);
    expect(st.nlink, f).toBe(1);
  }
  return leaf.serialNumber;
}

describe("a certificate set that is not due", () => {
  it("a hard link out of public/ is never chmod'ed: the file is replaced (temp + rename), the outside path keeps its mode", async () => {
    const t = await pkiTree();
    const outside = await outsideDir();
    await chmod(path.join(certDir(t), "key.pem"), 0o600);
    await link(path.join(certDir(t), "key.pem"), path.join(outside, "x"));
    await link(path.join(certDir(t), "ca.pem"), path.join(outside, "y"));
    const r = await t.run(["sync", "-v"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/update +certs\/web\/key\.pem .*rebuilt from the recorded issue \(mode 0600, 2 links/);
    expect(r.stderr).toMatch(/update +certs\/web\/ca\.pem .*\(2 links/);
    expect((await stat(path.join(outside, "x"))).mode & 0o7777).toBe(0o600);
    expect((await stat(path.join(outside, "x"))).nlink).toBe(1);
    await expectConsistentSet(t);
    expect(issued(t)).toBe(1);
  });

  it("garbage in ca.pem or fullchain.pem: check reports it; sync rebuilds it from the recorded issue without re-issuing, once (no heal loop)", async () => {
    const t = await pkiTree();
    const serial = await expectConsistentSet(t);
    const goodCa = await readFile(path.join(certDir(t), "ca.pem"), "utf8");
    await writeFile(path.join(certDir(t), "ca.pem"), "garbage");
    await writeFile(path.join(certDir(t), "fullchain.pem"), (await readFile(path.join(certDir(t), "cert.pem"), "utf8")) + "garbage");
    const c = await t.run(["check", "--offline"]);
    expect(c.code).toBe(1);
    expect(c.stdout).toMatch(/certificate +certs\/web\/ca\.pem +content is not the CA chain of the recorded issue/);
    expect(c.stdout).toMatch(/certificate +certs\/web\/fullchain\.pem +content is not the certificate followed by the CA chain/);
    const r = await t.run(["sync", "-v"]);
    expect(r.code).toBe(0);
    expect(await readFile(path.join(certDir(t), "ca.pem"), "utf8")).toBe(goodCa);
    expect(await expectConsistentSet(t)).toBe(serial);
    expect(issued(t)).toBe(1);
    expect(await hookRuns(t)).toHaveLength(2);
    const again = await t.run(["sync", "-v"]);
    expect(again.stderr).toMatch(/0 created, 0 updated, 0 deleted, 4 unchanged, 0 failed/);
    expect((await t.run(["check", "--offline"])).stdout).not.toMatch(/recorded issue/);
    // A missing fullchain.pem is rebuilt too, still without a new certificate.
    await rm(path.join(certDir(t), "fullchain.pem"));
    expect((await t.run(["sync"])).code).toBe(0);
    expect(await expectConsistentSet(t)).toBe(serial);
    expect(issued(t)).toBe(1);
  });

  it("without a recorded chain (older state) it is derived from a file that still holds what was written; with none, the set is re-issued and says why", async () => {
    const t = await pkiTree();
    const strip = async () => {
      const st = JSON.parse(await readFile(path.join(t.agentDir, "state.json"), "utf8")) as StateFile;
      for (const r of Object.values(st.pki)) {
        delete r.cert;
        delete r.chain;
      }
      await writeFile(path.join(t.agentDir, "state.json"), JSON.stringify(st), { mode: 0o600 });
    };
    await strip();
    await writeFile(path.join(certDir(t), "ca.pem"), "garbage");
    expect((await t.run(["sync"])).code).toBe(0);
    await expectConsistentSet(t);
    expect(issued(t)).toBe(1);
    expect((await readState(t)).pki["certs/web"]?.chain).toBe(await readFile(path.join(certDir(t), "ca.pem"), "utf8"));
    await strip();
    await writeFile(path.join(certDir(t), "ca.pem"), "garbage");
    await writeFile(path.join(certDir(t), "fullchain.pem"), "garbage");
    const r = await t.run(["sync", "-v"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/issued a certificate for certs\/web: .*\(the CA chain cannot be restored/);
    expect(issued(t)).toBe(2);
    await expectConsistentSet(t);
  });
});

describe("a rename failing in the middle of a certificate set commit", () => {
  it("state and journal reflect what is on disk; the next run completes the set from the record without re-issuing", async () => {
    const t = await pkiTree();
    const oldFull = await readFile(path.join(certDir(t), "fullchain.pem"));
    const oldFullHash = (await readState(t)).outputs["certs/web/fullchain.pem"]?.hash;
    t.double.advanceTime(49 * 3600);
    const at = { VAULT_RENDER_TEST_NOW_OFFSET: String(49 * 3600) };
    const r = await t.run(["sync"], { env: { ...at, VAULT_RENDER_TEST_FAULT: "rename:fullchain.pem" } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/certs\/web: cannot replace .*fullchain\.pem: EIO/);
    expectCleanLines(r.stderr);
    expect(issued(t)).toBe(2);
    await expect(stat(path.join(t.agentDir, "commit-journal.json"))).rejects.toThrow(/ENOENT/);
    expect(await tempFiles(t.dir)).toEqual([]);
    const newSerial = new X509Certificate(await readFile(path.join(certDir(t), "cert.pem"))).serialNumber;
    const state = await readState(t);
    expect(state.pki["certs/web"]?.serial).toBe(newSerial);
    expect(await readFile(path.join(certDir(t), "fullchain.pem"))).toEqual(oldFull);
    expect(state.outputs["certs/web/fullchain.pem"]?.hash).toBe(oldFullHash);
    expect(state.outputs["certs/web/cert.pem"]?.hash).toBe(await keyedHash(t, await readFile(path.join(certDir(t), "cert.pem"))));
    expect(await hookRuns(t)).toHaveLength(1);
    // The next run completes the set from the recorded issue, without a new certificate.
    const next = await t.run(["sync", "-v"], { env: at });
    expect(next.code).toBe(0);
    expect(next.stderr).toMatch(/update +certs\/web\/fullchain\.pem .*rebuilt from the recorded issue/);
    expect(await expectConsistentSet(t)).toBe(newSerial);
    expect(issued(t)).toBe(2);
    expect(await hookRuns(t)).toHaveLength(2);
  });

  it.runIf(canChattr)("a real rename failure (an immutable fullchain.pem): the same outcome, and the run after it is mutable again completes the set", async () => {
    const t = await pkiTree();
    const full = path.join(certDir(t), "fullchain.pem");
    const oldFull = await readFile(full);
    t.double.advanceTime(49 * 3600);
    const at = { VAULT_RENDER_TEST_NOW_OFFSET: String(49 * 3600) };
    expect(chattr("+i", full)).toBe(true);
    immutable.push(full);
    const r = await t.run(["sync"], { env: at });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/certs\/web: cannot replace .*fullchain\.pem: EPERM/);
    await expect(stat(path.join(t.agentDir, "commit-journal.json"))).rejects.toThrow(/ENOENT/);
    expect(await tempFiles(t.dir)).toEqual([]);
    const newSerial = new X509Certificate(await readFile(path.join(certDir(t), "cert.pem"))).serialNumber;
    expect((await readState(t)).pki["certs/web"]?.serial).toBe(newSerial);
    expect((await readState(t)).outputs["certs/web/fullchain.pem"]?.hash).toBe(await keyedHash(t, oldFull));
    chattr("-i", full);
    const next = await t.run(["sync"], { env: at });
    expect(next.code).toBe(0);
    expect(await expectConsistentSet(t)).toBe(newSerial);
    expect(issued(t)).toBe(2);
  });

  it("the key's rename failing: the old key stays recorded as on disk, and the next run re-issues (a key cannot be rebuilt)", async () => {
    const t = await pkiTree();
    const oldKey = await readFile(path.join(certDir(t), "key.pem"));
    t.double.advanceTime(49 * 3600);
    const at = { VAULT_RENDER_TEST_NOW_OFFSET: String(49 * 3600) };
    const r = await t.run(["sync"], { env: { ...at, VAULT_RENDER_TEST_FAULT: "rename:key.pem" } });
    expect(r.code).toBe(1);
    await expect(stat(path.join(t.agentDir, "commit-journal.json"))).rejects.toThrow(/ENOENT/);
    expect(await tempFiles(t.dir)).toEqual([]);
    expect(await readFile(path.join(certDir(t), "key.pem"))).toEqual(oldKey);
    expect((await readState(t)).outputs["certs/web/key.pem"]?.hash).toBe(await keyedHash(t, oldKey));
    const next = await t.run(["sync", "-v"], { env: at });
    expect(next.code).toBe(0);
    expect(next.stderr).toMatch(/issued a certificate for certs\/web: .*\(the key on disk does not match the certificate\)/);
    expect(issued(t)).toBe(3);
    await expectConsistentSet(t);
  });
});
