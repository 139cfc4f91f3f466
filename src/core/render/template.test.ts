import { describe, expect, it } from "vitest";
import { parseTemplate, renderTemplate, templateRefs } from "./template.js";

const values: Record<string, string> = { "db.password": 'p"w\nx', "db.user": "app", "cert.b64": Buffer.from("bytes!").toString("base64") };
const lookup = (ref: string) => {
  const v = values[ref];
  if (v === undefined) throw new Error(`missing ${ref}`);
  return v;
};

describe("templates", () => {
  it("substitutes references and applies escaping helpers", () => {
    const parts = parseTemplate('user={{ db.user }} pw={{db.password|json}} b={{ db.user | base64 }} d={{ cert.b64 | base64decode }} lit={{ "{{" }}', "t");
    expect(templateRefs(parts)).toEqual(["db.user", "db.password", "db.user", "cert.b64"]);
    expect(renderTemplate(parts, lookup, "t")).toBe(`user=app pw="p\\"w\\nx" b=YXBw d=bytes! lit={{`);
  });

  it("reports unclosed tags, unknown helpers and expressions with line and column", () => {
    expect(() => parseTemplate("a\nb {{ db.user", "t.tmpl")).toThrow(/t\.tmpl:2:3: "\{\{" is never closed/);
    expect(() => parseTemplate("{{ db.user | upper }}", "t")).toThrow(/unknown helper "upper"/);
    expect(() => parseTemplate("{{ db.user + db.password }}", "t")).toThrow(/expected \{\{ source\.key \}\}/);
  });

  it("fails on a missing key instead of rendering an empty value", () => {
    const parts = parseTemplate("{{ db.nope }}", "t");
    expect(() => renderTemplate(parts, lookup, "t")).toThrow(/missing db\.nope/);
  });
});

describe("template positions and cost", () => {
  it("a missing key names file:line:column", () => {
    const parts = parseTemplate("user={{ db.user }}\n  pw={{ db.nope }}\n", "t.tmpl");
    let at = "";
    expect(() =>
      renderTemplate(
        parts,
        (ref, where) => {
          at = where;
          return lookup(ref);
        },
        "t.tmpl",
      ),
    ).toThrow(/missing db\.nope/);
    expect(at).toBe("t.tmpl:2:6");
  });

  it("reports the line and column of a tag after many tags and lines", () => {
    const src = "{{ db.user }}\n".repeat(1000) + "xx {{ db.user | upper }}";
    expect(() => parseTemplate(src, "big.tmpl")).toThrow(/big\.tmpl:1001:4: unknown helper "upper"/);
  });

  it("parses in linear work: 40k placeholders scan a bounded number of characters", () => {
    const n = 40_000;
    const src = "k={{ db.user }} ".repeat(n) + "\n" + "{{ db.password }}\n".repeat(n);
    const stats = { scanned: 0 };
    const parts = parseTemplate(src, "t", stats);
    expect(templateRefs(parts)).toHaveLength(2 * n);
    // Each character is walked at most twice (once by the line tracker, once as part of a tag).
    expect(stats.scanned).toBeLessThanOrEqual(2 * src.length);
    expect(stats.scanned).toBeGreaterThanOrEqual(src.length - 1);
  });

  it("parses 200k placeholders on one line within the default test timeout", () => {
    const src = "{{ db.user }}-".repeat(200_000);
    const parts = parseTemplate(src, "t");
    expect(templateRefs(parts)).toHaveLength(200_000);
    const last = parts.filter((p) => "ref" in p).at(-1) as { line: number; col: number };
    expect(last).toMatchObject({ line: 1, col: 14 * 199_999 + 1 });
  });
});
