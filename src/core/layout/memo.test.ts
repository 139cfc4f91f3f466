/**
 * The layout memo: a load takes the memo only for exactly the text it was written for, by this
 * build; anything else validates again (and an invalid text is refused whatever the memo says).
 */
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadLayout } from "./load.js";

const layout = (extra: Record<string, unknown> = {}) => ({
  version: 1,
  auth: { approle: { roleIdFile: "approle/role_id", secretIdFile: "approle/secret_id" } },
  sources: { db: { type: "kv", mount: "secret", path: "db" } },
  outputs: [{ file: "db.env", format: "env", keys: { DB_PASSWORD: "db.password" } }],
  ...extra,
});

let dir = "";
let file = "";
const memoFile = () => path.join(dir, "agent-only", "layout.memo.json");
const write = (l: unknown) => writeFileSync(file, JSON.stringify(l, null, 2));
/** Tamper with the memo's remembered layout, keeping its key: proves whether a load used it. */
function tamper(): void {
  const m = JSON.parse(readFileSync(memoFile(), "utf8")) as { layout: { outputs: Array<{ file: string }> } };
  (m.layout.outputs[0] as { file: string }).file = "from-the-memo.env";
  writeFileSync(memoFile(), JSON.stringify(m));
}

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), "vr-memo-"));
  mkdirSync(path.join(dir, "agent-only"), { mode: 0o700 });
  file = path.join(dir, "vault-layout.json");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("the layout memo", () => {
  it("is written by a writing load (0600, no temp left) and then used by a reading one for the same text", async () => {
    write(layout());
    const first = await loadLayout(file, {}, "write");
    expect((readFileSync(memoFile()).length > 0)).toBe(true);
    expect(readdirSync(path.join(dir, "agent-only"))).toEqual(["layout.memo.json"]);
    const again = await loadLayout(file, {}, "read");
    expect(again).toEqual(first);
    tamper();
    expect((await loadLayout(file, {}, "read")).outputs[0]).toMatchObject({ file: "from-the-memo.env" });
    // Without a memo use, the text is validated as always.
    expect((await loadLayout(file, {})).outputs[0]).toMatchObject({ file: "db.env" });
  });

  it("is ignored for any other text (one byte more), and an edited text is validated again", async () => {
    write(layout());
    await loadLayout(file, {}, "write");
    tamper();
    // One byte of whitespace more: another text.
    writeFileSync(file, readFileSync(file, "utf8") + " ");
    expect((await loadLayout(file, {}, "read")).outputs[0]).toMatchObject({ file: "db.env" });
    write(layout({ outputs: [{ file: "db.env", format: "yaml" }] }));
    await expect(loadLayout(file, {}, "read")).rejects.toThrow(/\$\.outputs\[0\]/);
  });

  it("a reading load never writes one; a damaged memo is ignored; environment overrides still apply", async () => {
    write(layout());
    await loadLayout(file, {}, "read");
    expect(readdirSync(path.join(dir, "agent-only"))).toEqual([]);
    await loadLayout(file, {}, "write");
    const viaMemo = await loadLayout(file, { VAULT_ADDR: "https://vault.example:8200" }, "read");
    expect(viaMemo.vault.address).toBe("https://vault.example:8200");
    writeFileSync(memoFile(), "{ not json");
    expect((await loadLayout(file, {}, "read")).outputs[0]).toMatchObject({ file: "db.env" });
  });

  it("is never read through a symlink, nor when others may write it; it follows paths.agentOnly", async () => {
    write(layout());
    await loadLayout(file, {}, "write");
    tamper();
    expect((await loadLayout(file, {}, "read")).outputs[0]).toMatchObject({ file: "from-the-memo.env" });
    chmodSync(memoFile(), 0o666);
    expect((await loadLayout(file, {}, "read")).outputs[0]).toMatchObject({ file: "db.env" });
    chmodSync(memoFile(), 0o600);
    renameSync(memoFile(), path.join(dir, "elsewhere.json"));
    symlinkSync(path.join(dir, "elsewhere.json"), memoFile());
    expect((await loadLayout(file, {}, "read")).outputs[0]).toMatchObject({ file: "db.env" });
    // A memo whose trees differ from the text's is never taken (the trees come from the text).
    unlinkSync(memoFile());
    await loadLayout(file, {}, "write");
    const m = JSON.parse(readFileSync(memoFile(), "utf8")) as { layout: Record<string, unknown> };
    m.layout.paths = { public: "agent-only" };
    (m.layout.outputs as Array<{ file: string }>)[0] = { ...(m.layout.outputs as Array<{ file: string }>)[0], file: "from-the-memo.env" };
    writeFileSync(memoFile(), JSON.stringify(m));
    expect((await loadLayout(file, {}, "read")).outputs[0]).toMatchObject({ file: "db.env" });
    // Another agent-only/ directory: the memo is written and read there.
    mkdirSync(path.join(dir, "private"), { mode: 0o700 });
    write(layout({ paths: { agentOnly: "private" } }));
    await loadLayout(file, {}, "write");
    expect(readdirSync(path.join(dir, "private"))).toEqual(["layout.memo.json"]);
  });

  it("without an agent-only/ yet, a writing load still loads (the memo is best effort)", async () => {
    rmSync(path.join(dir, "agent-only"), { recursive: true });
    write(layout());
    expect((await loadLayout(file, {}, "write")).outputs).toHaveLength(1);
  });
});
