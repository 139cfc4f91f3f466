import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { jsonSyntaxMessage, loadLayout, parseBoolEnv, resolveLayoutText, validateLayout } from "./load.js";
import { layoutJsonSchema } from "./schema.js";

const base = () => ({
  version: 1,
  auth: { approle: { roleIdFile: "approle/role_id", secretIdFile: "approle/secret_id" } },
  sources: { db: { type: "kv", mount: "secret", path: "db" } },
  outputs: [{ file: "db.env", format: "env", keys: { DB_PASSWORD: "db.password" } }],
});

const issuesOf = (doc: unknown) => validateLayout(doc).issues.map((i) => `${i.path}: ${i.message}`);

describe("layout validation", () => {
  it("accepts the committed example layout", () => {
    const doc: unknown = JSON.parse(readFileSync(new URL("../../../vault-layout.example.json", import.meta.url), "utf8"));
    expect(issuesOf(doc)).toEqual([]);
  });

  it("names the JSON path of every offending field", () => {
    const doc = base() as Record<string, unknown>;
    (doc.auth as { approle: Record<string, unknown> }).approle = { roleIdFile: "r" };
    doc.sources = { db: { type: "kv", mount: "secret/", path: "db" } };
    doc.outputs = [
      { file: "a.env", format: "env" },
      { file: "b", format: "yaml" },
      { file: "c", format: "raw", value: "db.password", extra: 1 },
    ];
    expect(issuesOf(doc)).toEqual([
      "$.auth.approle.secretIdFile: required (a string)",
      "$.sources.db.mount: a mount path without a trailing /",
      '$.outputs[0].keys: an env output needs "keys", "from" or both',
      '$.outputs[1].format: expected one of "env", "raw", "json", "template", "pki"',
      '$.outputs[2]: unknown field "extra"',
    ]);
  });

  it("names schema errors and semantic errors together, in one run", () => {
    const doc = base() as Record<string, unknown>;
    doc.sources = { db: { type: "kv", mount: "secret", path: "db", kvVersion: 1, version: 3 }, bad: { type: "kv", mount: "secret/", path: "x" } };
    doc.hooks = { restart: { command: "docker restart app" } };
    doc.outputs = [
      { file: "a.env", format: "env", keys: { DB: "bad.password" }, hooks: ["restart"] },
      { file: "b", format: "yaml" },
      { file: "../escape", format: "raw", value: "db.password" },
      { file: "c", format: "raw", value: "nope.password", hooks: ["missing"] },
    ];
    expect(issuesOf(doc)).toEqual([
      "$.sources.bad.mount: a mount path without a trailing /",
      '$.outputs[1].format: expected one of "env", "raw", "json", "template", "pki"',
      '$.outputs[2].file: must not contain "." or ".." segments (paths stay inside public/)',
      '$.outputs[3].value: unknown source "nope" (defined sources: db, bad)',
      '$.outputs[3].hooks[0]: unknown hook "missing" (defined hooks: restart)',
      '$.hooks.restart.command: an argv array such as ["docker", "restart", "app"] (or set "shell": true)',
      "$.sources.db.version: version pinning needs a KV v2 source",
    ]);
  });

  it("looks names up without the prototype: constructor, toString and __proto__ are not defined sources or hooks", () => {
    const doc = base() as Record<string, unknown>;
    doc.outputs = [
      { file: "a", format: "raw", value: "toString.x", hooks: ["constructor"] },
      { file: "b.env", format: "env", keys: { X: "hasOwnProperty.y" }, from: ["valueOf"] },
    ];
    expect(issuesOf(doc)).toEqual([
      '$.outputs[0].value: unknown source "toString" (defined sources: db)',
      '$.outputs[0].hooks[0]: unknown hook "constructor" (defined hooks: none)',
      '$.outputs[1].keys.X: unknown source "hasOwnProperty" (defined sources: db)',
      '$.outputs[1].from[0]: unknown source "valueOf" (defined sources: db)',
    ]);
    const proto = JSON.parse(
      '{"version":1,"auth":{"approle":{"roleIdFile":"r","secretIdFile":"s"}},"sources":{"__proto__":{"type":"kv","mount":"secret","path":"x"}},' +
        '"hooks":{"__proto__":{"command":["true"]}},"outputs":[{"file":"a.env","format":"env","keys":{"__proto__":"__proto__.k"},"hooks":["__proto__"]}]}',
    ) as unknown;
    expect(issuesOf(proto)).toEqual(
      expect.arrayContaining([
        '$.sources.__proto__: "__proto__" is a reserved name',
        '$.hooks.__proto__: "__proto__" is a reserved name',
        '$.outputs[0].keys.__proto__: "__proto__" is a reserved name',
        '$.outputs[0].hooks[0]: unknown hook "__proto__" (defined hooks: none)',
      ]),
    );
    // Names that are only prototype names elsewhere are ordinary names here.
    const ok = base() as Record<string, unknown>;
    ok.sources = { constructor: { type: "kv", mount: "secret", path: "db" } };
    ok.hooks = { toString: { command: ["true"] } };
    ok.outputs = [{ file: "constructor", format: "env", keys: { constructor: "constructor.toString" }, hooks: ["toString"] }];
    const v = validateLayout(ok);
    expect(v.issues).toEqual([]);
    expect(Object.keys(v.layout?.outputs[0] && "keys" in v.layout.outputs[0] ? (v.layout.outputs[0].keys ?? {}) : {})).toEqual(["constructor"]);
  });

  it("refuses path escapes, duplicates and unknown sources", () => {
    const doc = base();
    doc.outputs = [
      { file: "../etc/passwd", format: "raw", value: "db.password" },
      { file: "/abs", format: "raw", value: "db.password" },
      { file: "a\nb", format: "raw", value: "db.password" },
      { file: "x/./y", format: "raw", value: "db.password" },
      { file: "ok", format: "raw", value: "db.password" },
      { file: "ok", format: "raw", value: "db.password" },
      { file: "other", format: "raw", value: "nope.password" },
      { file: ".vault-render.tmp-x", format: "raw", value: "db.password" },
    ] as never;
    const issues = issuesOf(doc);
    expect(issues).toEqual([
      '$.outputs[0].file: must not contain "." or ".." segments (paths stay inside public/)',
      "$.outputs[1].file: must be relative (no leading /)",
      "$.outputs[2].file: must not contain control characters (NUL, newline, tab, ...)",
      '$.outputs[3].file: must not contain "." or ".." segments (paths stay inside public/)',
      '$.outputs[5].file: duplicate output file "ok" (also $.outputs[4])',
      '$.outputs[6].value: unknown source "nope" (defined sources: db)',
      "$.outputs[7].file: must not start with the reserved prefix .vault-render.tmp-",
    ]);
  });

  it("refuses public/ and agent-only/ nested in each other", () => {
    const doc = { ...base(), paths: { public: "tree", agentOnly: "tree/agent" } };
    expect(() => resolveLayoutText("/srv/vault/layout.json", JSON.stringify(doc), {})).toThrow(/must be separate/);
  });

  it("resolves relative paths against the layout's directory and applies env overrides", () => {
    const doc = { ...base(), vault: { address: "https://vault.lan:8200", caCert: "ca.pem", skipVerify: true } };
    const l = resolveLayoutText("/srv/vault/layout.json", JSON.stringify(doc), {
      VAULT_ADDR: "http://127.0.0.1:8200/",
      VAULT_SKIP_VERIFY: "false",
      VAULT_NAMESPACE: "team",
      VAULT_CACERT: "/etc/ca.pem",
      VAULT_TLS_SERVER_NAME: "vault.internal",
    });
    expect(l.publicDir).toBe("/srv/vault/public");
    expect(l.agentDir).toBe("/srv/vault/agent-only");
    expect(l.approle.secretIdFile).toBe("/srv/vault/agent-only/approle/secret_id");
    expect(l.vault).toMatchObject({ address: "http://127.0.0.1:8200", skipVerify: false, namespace: "team", caCertFile: "/etc/ca.pem", tlsServerName: "vault.internal" });
    const noEnv = resolveLayoutText("/srv/vault/layout.json", JSON.stringify(doc), {});
    expect(noEnv.vault).toMatchObject({ address: "https://vault.lan:8200", skipVerify: true, caCertFile: "/srv/vault/ca.pem" });
  });

  it("parses VAULT_SKIP_VERIFY strictly like the official CLI (not like node-vault)", () => {
    for (const t of ["1", "t", "T", "TRUE", "true", "True"]) expect(parseBoolEnv("X", t)).toBe(true);
    for (const f of ["0", "f", "F", "FALSE", "false", "False"]) expect(parseBoolEnv("X", f)).toBe(false);
    expect(parseBoolEnv("X", "")).toBeUndefined();
    expect(() => parseBoolEnv("VAULT_SKIP_VERIFY", "yes")).toThrow(/could not parse VAULT_SKIP_VERIFY/);
  });

  it("reports invalid JSON with the layout file and no stack", () => {
    expect(() => resolveLayoutText("/x/l.json", "{ nope", {})).toThrow(/\/x\/l\.json: \$: not valid JSON/);
  });

  it("names the errno's meaning and the next step when the layout cannot be read", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "vr-layout-"));
    try {
      await expect(loadLayout(dir, {})).rejects.toMatchObject({
        message: `cannot read layout ${dir}: EISDIR: is a directory`,
        hint: "--layout must name the layout file, not its directory",
      });
      await expect(loadLayout(path.join(dir, "nope.json"), {})).rejects.toMatchObject({
        message: `cannot read layout ${path.join(dir, "nope.json")}: ENOENT: no such file or directory`,
        hint: "pass the layout with --layout or run from its directory (default ./vault-layout.json)",
      });
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it("names the line and column of a JSON syntax error, and none of the text around it", () => {
    expect(() => resolveLayoutText("/x/l.json", "{ nope", {})).toThrow("/x/l.json: $: not valid JSON at line 1, column 3 (Expected property name or '}')");
    expect(jsonSyntaxMessage("/l", '{\n  "a": 1,\n  nope', "Expected double-quoted property name in JSON at position 14")).toBe(
      "/l: $: not valid JSON at line 3, column 3 (Expected double-quoted property name)",
    );
    expect(jsonSyntaxMessage("/l", '{\n  "a": ', "Unexpected end of JSON input")).toBe("/l: $: not valid JSON at line 2, column 8 (Unexpected end of JSON input)");
    expect(jsonSyntaxMessage("/l", "x", "Unexpected token 'x', \"x\" is not valid JSON (line 1 column 1)")).toBe("/l: $: not valid JSON at line 1, column 1 (Unexpected token 'x')");
    expect(jsonSyntaxMessage("/l", '["s3cr3t",]', "Unexpected token ']', \"[\"s3cr3t\",]\" is not valid JSON")).not.toContain("s3cr3t");
  });
});

describe("published JSON Schema", () => {
  it("matches the committed schema/vault-layout.schema.json (run `npm run schema` after changing the zod schema)", () => {
    const committed: unknown = JSON.parse(readFileSync(new URL("../../../schema/vault-layout.schema.json", import.meta.url), "utf8"));
    expect(layoutJsonSchema()).toEqual(committed);
  });
});
