/**
 * The layout memo: a load takes the memo only for exactly the text it was written for, by this
 * build; anything else validates again (and an invalid text is refused whatever the memo says).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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

  it("is ignored for any other text, and an invalid text is refused whatever the memo holds", async () => {
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

  it("without an agent-only/ yet, a writing load still loads (the memo is best effort)", async () => {
    rmSync(path.join(dir, "agent-only"), { recursive: true });
    write(layout());
    expect((await loadLayout(file, {}, "write")).outputs).toHaveLength(1);
  });
});
