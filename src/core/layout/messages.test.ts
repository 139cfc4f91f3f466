import { describe, expect, it } from "vitest";
import { validateLayout } from "./load.js";

// The texts built from zod's own messages (src/core/support/zod.ts installs the English ones: zod/mini
// loads no locale by itself, and without it every issue would read "Invalid input").
const issuesOf = (doc: unknown) => validateLayout(doc).issues.map((i) => `${i.path}: ${i.message}`);

describe("layout issue texts from zod's messages", () => {
  it("types, sizes, formats and enums read as they always did", () => {
    expect(
      issuesOf({
        version: 1,
        vault: { address: "ftp://vault", retries: 1.5, concurrency: 0, extra: 1, more: 2 },
        auth: { approle: { secretIdFile: 7 } },
        sources: { a: { type: "kv", mount: "m", path: "p", version: -1 }, b: { type: "nope" } },
        outputs: [{ format: "env", file: "", keys: { A: "a.b" }, dialect: "nope" }, "x"],
      }),
    ).toEqual([
      "$.vault.address: expected an http:// or https:// URL",
      "$.vault.retries: expected int, got number",
      "$.vault.concurrency: Too small: expected number to be >=1",
      '$.vault: unknown fields "extra", "more"',
      "$.auth.approle.roleIdFile: required (expected string)",
      "$.auth.approle.secretIdFile: expected string, got number",
      "$.sources.a.version: Too small: expected number to be >0",
      '$.sources.b.type: expected one of "kv", "read", "lease"',
      "$.outputs[0].file: Too small: expected string to have >=1 characters",
      '$.outputs[0].dialect: expected one of "portable", "compose", "dotenv", "python-dotenv", "posix", "sh", "systemd"',
      "$.outputs[1]: expected object, got string",
    ]);
  });
});
