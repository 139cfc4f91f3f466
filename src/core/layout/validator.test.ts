import { describe, expect, it } from "vitest";
import { validateLayout } from "./load.js";
import { validateArgv } from "./validator.js";

const layout = (outputs: unknown[]) => ({
  version: 1,
  auth: { approle: { roleIdFile: "r", secretIdFile: "s" } },
  sources: { db: { type: "kv", mount: "secret", path: "db" } },
  outputs,
});
const issuesOf = (outputs: unknown[]) => validateLayout(layout(outputs)).issues.map((i) => `${i.path}: ${i.message}`);
const env = { file: "db.env", format: "env", keys: { A: "db.a" } };
const pki = { format: "pki", dir: "certs", mount: "pki", role: "web", commonName: "a.example" };

describe("validate placeholders", () => {
  it("a file output: every {} in every argument is the file", () => {
    expect(validateArgv(["nginx", "-t", "-c", "{}"], { file: "/p/.t" })).toEqual(["nginx", "-t", "-c", "/p/.t"]);
    expect(validateArgv(["x", "--in={}", "{}{}", "{} {}"], { file: "/a" })).toEqual(["x", "--in=/a", "/a/a", "/a /a"]);
    // Other braces are left as they are.
    expect(validateArgv(["jq", "{a}", "{ }", "{}"], { file: "/a" })).toEqual(["jq", "{a}", "{ }", "/a"]);
  });

  it("a PKI set: {cert} {key} {ca} {fullchain} each member, {} the certificate (the full chain without one)", () => {
    const paths = { cert: "/c", key: "/k", ca: "/a", fullchain: "/f" };
    expect(validateArgv(["v", "{cert}", "{key}", "-ca={ca}", "{fullchain}", "{}"], paths)).toEqual(["v", "/c", "/k", "-ca=/a", "/f", "/c"]);
    expect(validateArgv(["v", "{}"], { key: "/k", fullchain: "/f" })).toEqual(["v", "/f"]);
  });
});

describe("validate in the layout", () => {
  it("valid: argv with {} (file outputs), set placeholders (PKI), a duration", () => {
    expect(issuesOf([{ ...env, validate: ["jq", "empty", "{}"], validateTimeout: "5s" }, { ...pki, validate: ["openssl", "x509", "-noout", "-in", "{cert}"] }])).toEqual([]);
  });

  it("messages name the JSON path", () => {
    expect(
      issuesOf([
        { ...env, validate: [] },
        { ...env, file: "b.env", validate: "jq empty {}" },
        { ...env, file: "c.env", validate: ["jq", ""], validateTimeout: "soon" },
        { ...env, file: "d.env", validate: ["true"] },
        { ...pki, validate: ["openssl", "x509"] },
        { ...pki, dir: "certs2", files: { key: null }, validate: ["check", "{cert}", "--key={key}"] },
      ]),
    ).toEqual([
      "$.outputs[0].validate: must not be an empty list",
      "$.outputs[1].validate: must be a list, not a string",
      "$.outputs[2].validate[1]: must not be empty",
      '$.outputs[2].validateTimeout: a duration such as "30s", "5m", "1h30m" or seconds as "90"',
      '$.outputs[3].validate: the command must name the file it checks: put {} in an argument, e.g. ["jq", "empty", "{}"]',
      "$.outputs[4].validate: the command must name a file of the set: {cert}, {key}, {ca}, {fullchain} or {}",
      "$.outputs[5].validate[2]: {key} names a file the set leaves out (files.key is null)",
    ]);
  });
});
