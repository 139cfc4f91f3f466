import { describe, expect, it } from "vitest";
import { lex, parseGoTemplate, TemplateSyntaxError } from "./gotemplate.js";
import type { Node } from "./gotemplate.js";
import { translateTemplate } from "./translate.js";

const texts = (src: string, l?: string, r?: string) => lex(src, l, r).map((t) => (t.t === "text" ? t.text : `<${t.inner.trim()}@${t.line}>`));

describe("Go template lexer", () => {
  it("trim markers eat the whitespace (newlines included) on their side only", () => {
    expect(texts("a \n {{- .X -}} \n b")).toEqual(["a", "<.X@2>", "b"]);
    expect(texts("a \n {{ .X -}} \n b")).toEqual(["a \n ", "<.X@2>", "b"]);
    expect(texts("a \n {{- .X }} \n b")).toEqual(["a", "<.X@2>", " \n b"]);
  });

  it("{{-3}} is not a trim marker (Go needs the space)", () => {
    expect(texts("a {{-3}}")).toEqual(["a ", "<-3@1>"]);
  });

  it("comments are dropped, with their own trim markers", () => {
    expect(texts("a\n{{- /* c\nd */ -}}\nb")).toEqual(["a", "b"]);
    expect(texts("a {{/* c */}} b")).toEqual(["a ", " b"]);
  });

  it("custom delimiters; the default ones are then plain text", () => {
    expect(texts('x {{ y }} [[ with secret "a" ]][[ .Data.k ]][[ end ]]', "[[", "]]")).toEqual(["x {{ y }} ", '<with secret "a"@1>', "<.Data.k@1>", "<end@1>"]);
  });

  it("a closing delimiter inside a string does not end the action", () => {
    expect(texts('{{ "}}" }}z')).toEqual(['<"}}"@1>', "z"]);
  });

  it("line numbers count newlines in text, in actions and in trimmed whitespace", () => {
    const toks = lex("1\n2\n{{ .A\n}}\n\n{{- .B }}\n{{ .C }}");
    expect(toks.filter((t) => t.t === "action").map((t) => t.line)).toEqual([3, 6, 7]);
  });

  it("an unclosed action is a syntax error with its line", () => {
    expect(() => lex("a\nb {{ .X")).toThrow(TemplateSyntaxError);
    try {
      lex("a\nb {{ .X");
    } catch (e) {
      expect((e as TemplateSyntaxError).line).toBe(2);
    }
  });
});

describe("Go template parser", () => {
  it("builds with / range / if / else trees with lines", () => {
    const nodes = parseGoTemplate('{{ with secret "p" }}\n{{ if .Data.x }}a{{ else }}b{{ end }}{{ range $k, $v := .Data }}{{ $k }}{{ end }}{{ end }}');
    const w = nodes[0] as Extract<Node, { body: Node[] }>;
    expect(w.kind).toBe("with");
    const kinds = w.body.map((n) => n.kind);
    expect(kinds).toEqual(["text", "if", "range"]);
    const r = w.body[2] as Extract<Node, { body: Node[] }>;
    expect(r.pipe.decl).toEqual(["$k", "$v"]);
    expect(w.body[1]?.line).toBe(2);
  });

  it("else if chains close with one end", () => {
    const nodes = parseGoTemplate("{{ if .A }}a{{ else if .B }}b{{ else }}c{{ end }}x");
    expect(nodes.map((n) => n.kind)).toEqual(["if", "text"]);
  });

  it("unbalanced end / unclosed block are syntax errors", () => {
    expect(() => parseGoTemplate("{{ end }}")).toThrow(/unexpected/);
    expect(() => parseGoTemplate("\n{{ with .A }}")).toThrow(/unclosed/);
  });
});

describe("translation of one template", () => {
  const shape = (src: string) => translateTemplate(parseGoTemplate(src));

  it("the env idiom in several trim spellings, and not with a blank line per entry", () => {
    for (const src of [
      '{{ with secret "s/data/a" }}{{ range $k, $v := .Data.data }}{{ $k }}={{ $v }}\n{{ end }}{{ end }}',
      '{{ with secret "s/data/a" -}}\n  {{ range $key, $val := .Data.data -}}\n{{ $key }}={{ $val }}\n{{ end -}}\n{{ end -}}\n',
      '{{ with secret "kv/a" }}{{ range $k, $v := .Data }}{{ $k }}={{ $v }}\n{{ end }}{{ end }}',
    ]) {
      expect(shape(src).shape).toEqual({ kind: "env", use: 0 });
    }
    expect(shape('{{ with secret "s/data/a" }}{{ range $k, $v := .Data.data }}\n{{ $k }}={{ $v }}\n{{ end }}{{ end }}').refusals.map((r) => r.construct)).toEqual(["range"]);
    expect(shape('{{ with secret "s/data/a" }}{{ range $k, $v := .Data.data }}{{ $v }}={{ $k }}\n{{ end }}{{ end }}').refusals.map((r) => r.construct)).toContain("range");
  });

  it("the env idiom followed by a final newline is refused with the spelling that translates", () => {
    const t = shape('{{ with secret "s/data/a" -}}\n{{ range $k, $v := .Data.data }}{{ $k }}={{ $v }}\n{{ end }}{{ end }}\n');
    expect(t.refusals).toEqual([{ line: 2, construct: "range", reason: expect.stringContaining("{{ end -}}") as string }]);
  });

  it("raw: one reference, optionally one newline; anything more is a template", () => {
    expect(shape('{{ with secret "s/data/a" }}{{ .Data.data.k }}{{ end }}\n').shape).toEqual({ kind: "raw", use: 0, key: "k", newline: true });
    expect(shape('{{ with secret "s/data/a" }}{{ .Data.data.k }}{{ end }}\n\n').shape?.kind).toBe("template");
    expect(shape('{{ with secret "s/data/a" }}{{ .Data.data.k | trimSpace }}{{ end }}').shape?.kind).toBe("template");
  });

  it("refusal lines are template lines", () => {
    const t = shape('a\n{{ with secret "s/data/a" }}\n\n{{ .Data.metadata.created_time }}{{ end }}\n{{ env "X" }}');
    expect(t.refusals.map((r) => [r.line, r.construct])).toEqual([
      [4, ".Data.metadata"],
      [5, "function env"],
    ]);
  });
});
