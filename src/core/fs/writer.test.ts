import { execFileSync } from "node:child_process";
import { mkdtemp, mkdir, readFile, readdir, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TEMP_PREFIX } from "./paths.js";
import { atomicWrite, cleanStaleTemps, openDirChain, readCurrent, removeOwnedFile, writeInTree } from "./writer.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "vr-writer-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("atomicWrite", () => {
  it("writes the exact bytes with the requested mode whatever the umask", async () => {
    const old = process.umask(0o077);
    try {
      await atomicWrite(path.join(dir, "a"), Buffer.from("hello"), 0o644);
    } finally {
      process.umask(old);
    }
    const st = await stat(path.join(dir, "a"));
    expect(st.mode & 0o7777).toBe(0o644);
    expect(await readFile(path.join(dir, "a"), "utf8")).toBe("hello");
  });

  it("keeps the old file and leaves no temp file when a write fails midway", async () => {
    const f = path.join(dir, "a");
    await writeFile(f, "old content");
    const fault = (_f: string, off: number) => {
      if (off >= 0) throw Object.assign(new Error("no space"), { code: "ENOSPC" });
    };
    await expect(atomicWrite(f, Buffer.from("new content"), 0o644, fault)).rejects.toThrow(/ENOSPC/);
    expect(await readFile(f, "utf8")).toBe("old content");
    expect((await readdir(dir)).filter((n) => n.startsWith(TEMP_PREFIX))).toEqual([]);
  });
});

describe("symlinks and confinement", () => {
  it("refuses a symlink planted at a target", async () => {
    await writeFile(path.join(dir, "real"), "x");
    await symlink(path.join(dir, "real"), path.join(dir, "link"));
    await expect(readCurrent(path.join(dir, "link"))).rejects.toThrow(/refusing to replace the symlink/);
  });

  it("refuses to write through a symlinked directory inside the tree", async () => {
    await mkdir(path.join(dir, "elsewhere"));
    await symlink(path.join(dir, "elsewhere"), path.join(dir, "sub"));
    await expect(openDirChain(dir, "sub/deeper", { create: { mode: 0o755, changed: new Set() } })).rejects.toThrow(/symlinked directory/);
  });

  it("creates missing directories 0755 whatever the umask", async () => {
    const old = process.umask(0o077);
    try {
      await (await openDirChain(dir, "a/b", { create: { mode: 0o755, changed: new Set() }, fixMode: 0o755 }))?.close();
    } finally {
      process.umask(old);
    }
    expect((await stat(path.join(dir, "a"))).mode & 0o7777).toBe(0o755);
    expect((await stat(path.join(dir, "a/b"))).mode & 0o7777).toBe(0o755);
  });

  it("only deletes regular files that still hold what was written, through real directories", async () => {
    const owns = (b: Buffer) => b.toString() === "ours";
    await mkdir(path.join(dir, "d"));
    await expect(removeOwnedFile(dir, "d", owns)).rejects.toThrow(/no longer a regular file/);
    expect(await removeOwnedFile(dir, "missing", owns)).toBe("gone");
    await writeFile(path.join(dir, "d/edited"), "edited");
    expect(await removeOwnedFile(dir, "d/edited", owns)).toBe("modified");
    expect(await readFile(path.join(dir, "d/edited"), "utf8")).toBe("edited");
    await mkdir(path.join(dir, "elsewhere"));
    await writeFile(path.join(dir, "elsewhere/f"), "ours");
    await symlink(path.join(dir, "elsewhere"), path.join(dir, "link"));
    await expect(removeOwnedFile(dir, "link/f", owns)).rejects.toThrow(/symlinked directory/);
    expect(await readFile(path.join(dir, "elsewhere/f"), "utf8")).toBe("ours");
    expect(await removeOwnedFile(dir, "elsewhere/f", owns)).toBe("deleted");
  });

  it("writes relative to the directory it opened, not through a name that changed meanwhile", async () => {
    await mkdir(path.join(dir, "sub"));
    const h = await openDirChain(dir, "sub");
    // The directory is moved and its name replaced by a link to somewhere else.
    await rename(path.join(dir, "sub"), path.join(dir, "moved"));
    await mkdir(path.join(dir, "elsewhere"));
    await symlink(path.join(dir, "elsewhere"), path.join(dir, "sub"));
    await atomicWrite(path.join(h?.path as string, "f"), Buffer.from("x"), 0o644);
    await h?.close();
    expect(await readdir(path.join(dir, "moved"))).toEqual(["f"]);
    expect(await readdir(path.join(dir, "elsewhere"))).toEqual([]);
  });
});

describe("cleanStaleTemps", () => {
  it("removes only files with the reserved prefix", async () => {
    await writeFile(path.join(dir, `${TEMP_PREFIX}123-abc`), "partial");
    await writeFile(path.join(dir, "keep.env"), "x");
    await writeFile(path.join(dir, ".hidden"), "x");
    expect(await cleanStaleTemps([dir])).toBe(1);
    expect((await readdir(dir)).sort()).toEqual([".hidden", "keep.env"]);
  });
});

describe("readCurrent", () => {
  it("reads a regular file whole with its mode; null when missing", async () => {
    const f = path.join(dir, "a");
    expect(await readCurrent(f)).toBeNull();
    await writeFile(f, "x".repeat(70_000), { mode: 0o640 });
    const cur = await readCurrent(f);
    expect(cur?.bytes.toString()).toBe("x".repeat(70_000));
    expect(cur?.mode).toBe(0o640);
    await writeFile(f, "");
    expect((await readCurrent(f))?.bytes.length).toBe(0);
  });

  it("reads past a size that lies (a file that grew after its fstat, as /proc files do)", async () => {
    const cur = await readCurrent("/proc/self/status");
    expect(cur?.bytes.toString()).toMatch(/^Name:/);
    expect(cur?.bytes.length).toBeGreaterThan(100);
  });

  it("refuses a symlink, a directory and a FIFO at the target (without blocking on the FIFO)", async () => {
    await writeFile(path.join(dir, "real"), "r");
    await symlink(path.join(dir, "real"), path.join(dir, "link"));
    await expect(readCurrent(path.join(dir, "link"))).rejects.toThrow(/refusing to replace the symlink/);
    await mkdir(path.join(dir, "d"));
    await expect(readCurrent(path.join(dir, "d"))).rejects.toThrow(/exists and is not a regular file/);
    execFileSync("mkfifo", [path.join(dir, "fifo")]);
    await expect(readCurrent(path.join(dir, "fifo"))).rejects.toThrow(/exists and is not a regular file/);
  });
});

describe("writeInTree's pre-rename step", () => {
  it("sees the complete temp (its real path, 0644, beside the target) before the rename", async () => {
    const seen: Array<{ tmp: string; bytes: string; mode: number; target: string }> = [];
    await writeInTree(dir, "sub/a.env", Buffer.from("new"), 0o644, 0o755, new Set(), undefined, async (tmp) => {
      seen.push({ tmp, bytes: await readFile(tmp, "utf8"), mode: (await stat(tmp)).mode & 0o7777, target: await readFile(path.join(dir, "sub/a.env"), "utf8").catch(() => "missing") });
    });
    expect(seen).toHaveLength(1);
    expect(path.dirname(seen[0]?.tmp ?? "")).toBe(path.join(dir, "sub"));
    expect(path.basename(seen[0]?.tmp ?? "").startsWith(TEMP_PREFIX)).toBe(true);
    expect(seen[0]).toMatchObject({ bytes: "new", mode: 0o644, target: "missing" });
    expect(await readFile(path.join(dir, "sub/a.env"), "utf8")).toBe("new");
  });

  it("a step that throws: the target keeps its bytes and inode, the temp is gone, the error is the step's", async () => {
    await writeInTree(dir, "a.env", Buffer.from("old"), 0o644, 0o755, new Set());
    const ino = (await stat(path.join(dir, "a.env"))).ino;
    const refused = new Error("refused");
    await expect(writeInTree(dir, "a.env", Buffer.from("new"), 0o644, 0o755, new Set(), undefined, () => Promise.reject(refused))).rejects.toBe(refused);
    expect(await readFile(path.join(dir, "a.env"), "utf8")).toBe("old");
    expect((await stat(path.join(dir, "a.env"))).ino).toBe(ino);
    expect((await readdir(dir)).filter((n) => n.startsWith(TEMP_PREFIX))).toEqual([]);
  });
});
