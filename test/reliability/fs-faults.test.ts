/**
 * Disk and filesystem faults (docs/reliability.md §4): a full disk (a small tmpfs when this
 * machine lets the test mount one, and always the injected ENOSPC at the writer's boundary), a
 * read-only public/, a missing agent-only/, a tree owned by someone else. Each: a clear line, the
 * old files intact, no temp file left.
 */
import { execFileSync, spawn } from "node:child_process";
import { chmod, chown, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { BIN, baseLayout, makeTree } from "../helpers.js";
import { snapshot as snapAll } from "../helpers.js";
import type { Tree } from "../helpers.js";
import { STACK_RE, childEnv, tempFiles } from "./support.js";

let trees: Tree[] = [];
const mounts: string[] = [];
const immutable: string[] = [];
afterEach(async () => {
  for (const m of mounts.splice(0)) sh("umount", ["-l", m]);
  for (const f of immutable.splice(0)) sh("chattr", ["-i", f]);
  await Promise.all(trees.map((x) => x.cleanup()));
  trees = [];
});

function sh(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Can this process mount a tmpfs (root in a sandbox that allows it)? */
const canMount = (() => {
  if (process.getuid?.() !== 0) return false;
  const probe = path.join(tmpdir(), `vr-mount-probe-${process.pid}`);
  try {
    execFileSync("mkdir", ["-p", probe]);
    if (!sh("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe])) return false;
    sh("umount", [probe]);
    return true;
  } finally {
    sh("rmdir", [probe]);
  }
})();
const canChattr = (() => {
  if (process.getuid?.() !== 0) return false;
  const probe = path.join(tmpdir(), `vr-chattr-probe-${process.pid}`);
  try {
    execFileSync("touch", [probe]);
    if (!sh("chattr", ["+i", probe])) return false;
    sh("chattr", ["-i", probe]);
    return true;
  } finally {
    sh("rm", ["-f", probe]);
  }
})();
console.log(`fs-faults: tmpfs mounts ${canMount ? "available" : "NOT available (injected faults only)"}, chattr ${canChattr ? "available" : "NOT available"}`);

async function tree(): Promise<Tree> {
  const t = await makeTree({ mode: "in-process" });
  trees.push(t);
  t.double.kvPut("secret", "app", { password: "old-password", big: "b".repeat(10), small: "s1" });
  await t.writeLayout(
    baseLayout({
      outputs: [
        { file: "app.env", format: "env", keys: { DB_PASSWORD: "app.password" } },
        { file: "big/blob", format: "raw", value: "app.big" },
        { file: "small.txt", format: "raw", value: "app.small" },
      ],
    }),
  );
  return t;
}

/** Files only: a directory's mtime moves when a temp file is created and removed in it. */
async function snapshot(dir: string) {
  const m = await snapAll(dir);
  for (const k of [...m.keys()]) if (k.endsWith("/")) m.delete(k);
  return m;
}

function expectOneLinePerProblem(stderr: string) {
  expect(stderr).not.toMatch(STACK_RE);
  for (const l of stderr.trim().split("\n")) expect(l).toMatch(/^vault-render: /);
}

describe("disk full", () => {
  it("injected ENOSPC mid-write (writer boundary): exit 1, clear line, old file intact, others synced, no temp", async () => {
    const t = await tree();
    expect((await t.run(["sync"])).code).toBe(0);
    const oldBlob = await readFile(path.join(t.publicDir, "big/blob"), "utf8");
    t.double.kvPut("secret", "app", { password: "new-password", big: "B".repeat(100_000), small: "s2" });
    const r = await t.run(["sync"], { env: { VAULT_RENDER_TEST_FAULT: "enospc:big/blob" } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/big\/blob: cannot write .*big\/blob: ENOSPC \(hint: the disk is full; the old file was kept\)/);
    expectOneLinePerProblem(r.stderr);
    expect(await readFile(path.join(t.publicDir, "big/blob"), "utf8")).toBe(oldBlob);
    expect(await readFile(path.join(t.publicDir, "small.txt"), "utf8")).toBe("s2");
    expect(await tempFiles(t.dir)).toEqual([]);
    // Space back: the next run converges.
    expect((await t.run(["sync"])).code).toBe(0);
    expect((await readFile(path.join(t.publicDir, "big/blob"), "utf8")).length).toBe(100_000);
  });

  it.runIf(canMount)("a real full tmpfs as public/: the same line, exit 5 (the only change could not be written), and the run after freeing space converges", async () => {
    const t = await tree();
    await mkdir(t.publicDir);
    expect(sh("mount", ["-t", "tmpfs", "-o", "size=128k,mode=0755", "tmpfs", t.publicDir])).toBe(true);
    mounts.push(t.publicDir);
    expect((await t.run(["sync"])).code).toBe(0);
    const before = await snapshot(t.publicDir);
    // 100 KB new + 100 KB temp does not fit into 128 KiB beside the old files.
    t.double.kvPut("secret", "app", { password: "old-password", big: "B".repeat(100_000), small: "s1" });
    await writeFile(path.join(t.publicDir, "filler"), Buffer.alloc(60_000));
    const r = await t.run(["sync"]);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/big\/blob: cannot write .*: ENOSPC \(hint: the disk is full; the old file was kept\)/);
    expectOneLinePerProblem(r.stderr);
    const after = await snapshot(t.publicDir);
    after.delete("filler");
    before.delete("filler");
    expect(after).toEqual(before);
    expect(await tempFiles(t.dir)).toEqual([]);
    await rm(path.join(t.publicDir, "filler"));
    expect((await t.run(["sync"])).code).toBe(0);
    expect((await readFile(path.join(t.publicDir, "big/blob"), "utf8")).length).toBe(100_000);
  });

  it.runIf(canMount)("a full agent-only/ (not even the lock can be created): exit 5 with one line, public files intact, no temp", async () => {
    const t = await tree();
    expect((await t.run(["sync"])).code).toBe(0);
    // Move agent-only onto a tiny tmpfs that is then filled.
    const saved = await Promise.all(["approle/role_id", "approle/secret_id", "token", "state.json", "state.key"].map(async (f) => [f, await readFile(path.join(t.agentDir, f))] as const));
    expect(sh("mount", ["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", t.agentDir])).toBe(true);
    mounts.push(t.agentDir);
    await mkdir(path.join(t.agentDir, "approle"), { mode: 0o700 });
    for (const [f, b] of saved) await writeFile(path.join(t.agentDir, f), b, { mode: 0o600 });
    try {
      await writeFile(path.join(t.agentDir, "filler"), Buffer.alloc(256 * 1024));
    } catch {
      // filled
    }
    t.double.kvPut("secret", "app", { password: "new-password", big: "b".repeat(10), small: "s3" });
    const before = await snapshot(t.publicDir);
    const r = await t.run(["sync"]);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/cannot create the lock .*: ENOSPC; nothing was changed/);
    expect(await snapshot(t.publicDir)).toEqual(before);
    expectOneLinePerProblem(r.stderr);
    expect(await tempFiles(t.dir)).toEqual([]);
    JSON.parse(await readFile(path.join(t.agentDir, "state.json"), "utf8"));
  });
});

describe("read-only and missing directories", () => {
  it.runIf(canMount)("a read-only public/ (ro bind mount): exit 5 (nothing could be written), EROFS named with its hint, old files intact, no temp", async () => {
    const t = await tree();
    expect((await t.run(["sync"])).code).toBe(0);
    const before = await snapshot(t.publicDir);
    expect(sh("mount", ["--bind", t.publicDir, t.publicDir])).toBe(true);
    mounts.push(t.publicDir);
    expect(sh("mount", ["-o", "remount,bind,ro", t.publicDir])).toBe(true);
    t.double.kvPut("secret", "app", { password: "new-password", big: "b".repeat(10), small: "s2" });
    const r = await t.run(["sync"]);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/EROFS \(hint: the filesystem is read-only; the old file was kept\)/);
    expectOneLinePerProblem(r.stderr);
    expect(await snapshot(t.publicDir)).toEqual(before);
    expect(await tempFiles(t.dir)).toEqual([]);
  });

  it.runIf(canChattr)("an immutable public/ subdirectory (chattr +i, refuses even root): exit 1, EPERM with its hint, other outputs synced", async () => {
    const t = await tree();
    expect((await t.run(["sync"])).code).toBe(0);
    const big = path.join(t.publicDir, "big");
    expect(sh("chattr", ["+i", big])).toBe(true);
    immutable.push(big);
    t.double.kvPut("secret", "app", { password: "new-password", big: "changed", small: "s2" });
    const r = await t.run(["sync"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/big\/blob: cannot write .*: EPERM \(hint: vault-render cannot write there: check the directory's owner and permissions\)/);
    expectOneLinePerProblem(r.stderr);
    expect(await readFile(path.join(big, "blob"), "utf8")).toBe("b".repeat(10));
    expect(await readFile(path.join(t.publicDir, "small.txt"), "utf8")).toBe("s2");
    expect(await tempFiles(t.dir)).toEqual([]);
  });

  it("a missing agent-only/: exit 5, one line with a hint, nothing written", async () => {
    const t = await tree();
    await rm(t.agentDir, { recursive: true });
    const r = await t.run(["sync"]);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/^vault-render: agent-only directory .*agent-only does not exist \(hint: create it \(mkdir -m 700\)/);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    await expect(stat(t.publicDir)).rejects.toThrow(/ENOENT/);
    expect(t.double.requests.length).toBe(0);
  });

  it("agent-only/ is a file: exit 5, one line", async () => {
    const t = await tree();
    await rm(t.agentDir, { recursive: true });
    await writeFile(t.agentDir, "not a dir");
    const r = await t.run(["sync"]);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/agent-only path .* is not a directory; nothing was changed/);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(t.double.requests.length).toBe(0);
  });
});

describe("wrong ownership (the CLI run as an unprivileged user against a root-owned tree)", () => {
  const asNobody = process.getuid?.() === 0;
  function runAs(t: Tree, uid: number, gid: number): Promise<{ code: number | null; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, "--layout", t.layoutFile, "sync"], { cwd: t.dir, uid, gid, env: childEnv({ VAULT_ADDR: t.double.url }), stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.on("error", reject);
      child.on("close", (code) => resolve({ code, stderr }));
    });
  }

  it.runIf(asNobody)("agent-only/ owned by root (0700): a clear line, exit 5, nothing changed", async () => {
    const t = await tree();
    expect((await t.run(["sync"])).code).toBe(0);
    await chmod(t.dir, 0o755);
    const before = await snapshot(t.publicDir);
    t.double.kvPut("secret", "app", { password: "new-password", big: "b".repeat(10), small: "s2" });
    const r = await runAs(t, 65534, 65534);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/EACCES/);
    expectOneLinePerProblem(r.stderr);
    expect(await snapshot(t.publicDir)).toEqual(before);
    expect(await tempFiles(t.dir)).toEqual([]);
  });

  it.runIf(asNobody)("agent-only/ owned by the user but public/ owned by root: exit 5, EACCES with its hint per output, old files intact", async () => {
    const t = await tree();
    expect((await t.run(["sync"])).code).toBe(0);
    await chmod(t.dir, 0o755);
    execFileSync("chown", ["-R", "65534:65534", t.agentDir]);
    await chown(t.layoutFile, 0, 0);
    const before = await snapshot(t.publicDir);
    t.double.kvPut("secret", "app", { password: "new-password", big: "b".repeat(10), small: "s2" });
    const r = await runAs(t, 65534, 65534);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/EACCES \(hint: vault-render cannot write there: check the directory's owner and permissions\)/);
    expectOneLinePerProblem(r.stderr);
    expect(await snapshot(t.publicDir)).toEqual(before);
    expect(await tempFiles(t.dir)).toEqual([]);
  });
});
