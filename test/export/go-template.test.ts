/**
 * The Go template evaluator (test/support/go-template.ts) on cases whose output Go's documentation
 * fixes, and the byte comparison's power: a template that is wrong for one character class fails it.
 */
import { describe, expect, it } from "vitest";
import { renderGo, goData } from "../support/go-template.js";
import { envTemplate } from "../../src/core/export/templates.js";
import type { Access } from "../../src/core/export/templates.js";
import { encodeEnvFile } from "../../src/core/render/dotenv.js";

const go = (text: string, data: unknown = {}) => renderGo(text, goData(data)).toString("utf8");

describe("go-template evaluator", () => {
  it("actions, variables, if / else if / else, trim markers", () => {
    expect(go('{{ $a := "x" }}[{{ $a }}]')).toBe("[x]");
    expect(go("{{ if .A }}a{{ else if .B }}b{{ else }}c{{ end }}", { A: "", B: "1" })).toBe("b");
    expect(go("a  {{- \"b\" -}}  c")).toBe("abc");
    expect(go('{{ $f := true }}{{ range $k, $v := .M }}{{ if not $f }},{{ end }}{{ $f = false }}{{ $k }}={{ $v }}{{ end }}', { M: { b: "2", a: "1", B: "0" } })).toBe("B=0,a=1,b=2");
    expect(go("{{ range $x := .L }}<{{ $x }}>{{ else }}empty{{ end }}", { L: [] })).toBe("empty");
    expect(go("{{ range .L }}{{ . }};{{ end }}", { L: ["p", "q"] })).toBe("p;q;");
  });

  it("sprig functions: argument order (the piped value last), bytes, b64dec's error text", () => {
    expect(go('{{ "a.b.c" | replace "." "-" }}')).toBe("a-b-c");
    expect(go('{{ if contains "b" "abc" }}y{{ end }}{{ if hasPrefix "a" "abc" }}p{{ end }}{{ if hasSuffix "c" "abc" }}s{{ end }}')).toBe("yps");
    expect(go('{{ "héllo" | b64enc }}')).toBe(Buffer.from("héllo").toString("base64"));
    expect(go('{{ "aGk=" | b64dec }}|{{ "aGk" | b64dec }}')).toBe("hi|illegal base64 data at input byte 0");
    expect(go('{{ get .M "missing" }}|{{ index .M "k" }}|{{ hasKey .M "k" }}', { M: { k: "v" } })).toBe("|v|true");
    expect(go('{{ printf "\\"%s\\"" "q" }}')).toBe('"q"');
    expect(go('{{ trimAll " x" "x a x " }}')).toBe("a");
  });

  it("fails where Go fails: unknown function, {{{, string function on a non-string, fail", () => {
    expect(() => go("{{ toJson . }}")).toThrow(/not defined/);
    expect(() => go("{{{ 1 }}")).toThrow(/unexpected/);
    expect(() => go('{{ .N | replace "a" "b" }}', { N: 5 })).toThrow(/expected string/);
    expect(() => go('{{ fail "no" }}')).toThrow(/fail: no/);
  });
});

describe("the byte comparison discriminates", () => {
  const access: Access = {
    value: (_s, k) => `(get .Secrets "${k}")`,
    range: (_s, k, v) => ({ open: `{{ range ${k}, ${v} := .Secrets }}`, key: k, close: "{{ end }}" }),
    guards: () => "",
  };
  const spec = { keys: [["A", "s", "a"] as const], from: [] };
  const value = 'cost $5 "now"\\';

  it("the compose template equals encodeEnvFile; without its $ → $$ step it does not", () => {
    const want = encodeEnvFile([{ key: "A", value }], "compose", { file: "x.env" });
    const text = envTemplate(spec, "compose", access);
    expect(go(text, { Secrets: { a: value } })).toBe(want);
    const broken = text.replace(' | replace "$" "$$"', "");
    expect(broken).not.toBe(text);
    expect(go(broken, { Secrets: { a: value } })).not.toBe(want);
  });
});
