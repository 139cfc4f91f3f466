import { describe, expect, it } from "vitest";
import { validateLayout } from "./load.js";

// The texts built from zod's own messages (src/core/support/zod.ts installs the English ones: zod/mini
// loads no locale by itself, and without it every issue would read "Invalid input").
const issuesOf = (doc: unknown) => validateLayout(doc).issues.map((i) => `${i.path}: ${i.message}`);

describe("layout issue texts from zod's messages", () => {
  it("types, sizes, formats and enums read in the layout's words, not zod's", () => {
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
      "$.vault.retries: must be a whole number",
      "$.vault.concurrency: must be at least 1",
      '$.vault: unknown fields "extra", "more"',
      "$.auth.approle.roleIdFile: required (a string)",
      "$.auth.approle.secretIdFile: must be a string, not a number",
      "$.sources.a.version: must be greater than 0",
      '$.sources.b.type: expected one of "kv", "read", "lease"',
      "$.outputs[0].file: must not be empty",
      '$.outputs[0].dialect: expected one of "portable", "compose", "dotenv", "python-dotenv", "posix", "sh", "systemd", "verbatim"',
      "$.outputs[1]: must be an object, not a string",
    ]);
  });
});

describe("unknown fields", () => {
  const base = () => ({
    version: 1,
    auth: { approle: { roleIdFile: "r", secretIdFile: "s" } },
    sources: { db: { type: "kv", mount: "secret", path: "db" } },
    outputs: [{ file: "db.env", format: "env", keys: { A: "db.a" } }] as unknown[],
  });

  it("suggest the closest valid name of that object, at the field's JSON path", () => {
    const doc = { ...base(), vault: { adress: "https://v:8200", timout: "5s" }, sources: { db: { type: "kv", mount: "secret", path: "db", kvversion: 2 } } };
    doc.outputs = [
      { file: "a.env", format: "env", keys: { A: "db.a" }, dialet: "posix" },
      { file: "b", format: "raw", value: "db.a", newlin: false },
      { file: "c", format: "raw", value: "db.a", zzzzzz: 1 },
    ];
    expect(issuesOf(doc)).toEqual([
      '$.vault: unknown fields "adress" (did you mean "address"?), "timout" (did you mean "timeout"?)',
      '$.sources.db: unknown field "kvversion" (did you mean "kvVersion"?)',
      '$.outputs[0]: unknown field "dialet" (did you mean "dialect"?)',
      '$.outputs[1]: unknown field "newlin" (did you mean "newline"?)',
      '$.outputs[2]: unknown field "zzzzzz"',
    ]);
  });

  it("suggest only names of the output's own format (raw outputs have no dialect)", () => {
    const doc = base();
    doc.outputs = [{ file: "b", format: "raw", value: "db.a", dialect: "posix" }];
    expect(issuesOf(doc)).toEqual(['$.outputs[0]: unknown field "dialect"']);
  });
});

describe("types in the layout's words", () => {
  it("a record given a list, a duration given a number, a list given an object, a version that can only be 1", () => {
    expect(
      issuesOf({
        version: 2,
        vault: { timeout: 30 },
        auth: { approle: { roleIdFile: "r", secretIdFile: "s" } },
        sources: [],
        outputs: {},
      }),
    ).toEqual([
      "$.version: must be 1",
      '$.vault.timeout: must be a duration in quotes, such as "30s", "5m", "1h30m" or seconds as "90"',
      "$.sources: must be an object of name → value, not a list",
      "$.outputs: must be a list, not an object",
    ]);
  });
});
