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
