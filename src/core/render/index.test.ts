import { describe, expect, it } from "vitest";
import { renderOutput } from "./index.js";
import { ExitCode, SourceUnavailable, VrError, isVrError, oneLine } from "../support/errors.js";
import type { FileOutput } from "../layout/schema.js";

const raw = { file: "db/password", format: "raw", value: "db.password" } as FileOutput;

describe("SourceUnavailable", () => {
  it("is a VrError carrying the source's own error, message and exit code", async () => {
    const cause = new VrError("VAULT_UNREACHABLE", "Vault is unreachable", { exit: ExitCode.Unavailable });
    const e: unknown = await renderOutput(raw, new Map([["db", cause]]), "/nonexistent", new Map()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SourceUnavailable);
    if (!(e instanceof SourceUnavailable)) return;
    expect(isVrError(e)).toBe(true);
    expect([e.code, e.source, e.error, e.cause, e.message, e.exit]).toEqual(["SOURCE_UNAVAILABLE", "db", cause, cause, "Vault is unreachable", ExitCode.Unavailable]);
    // The one formatter names the source and gives the source's own message (and hint, if any).
    expect(oneLine(e)).toBe('source "db": Vault is unreachable');
    expect(new SourceUnavailable("db", new Error("boom")).exit).toBe(ExitCode.Failed);
  });
});
