/** The tv4 stand-in agrees with tv4 on node-vault's own command schemas, and knows every keyword they use. */
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { argCheck, assertSupported } from "./arg-check.js";

const require = createRequire(import.meta.url);
const tv4 = require("tv4") as { validate: (d: unknown, s: unknown) => boolean };
const commands = require("node-vault/src/commands.js") as Record<string, { schema?: { req?: unknown; query?: unknown } }>;

const schemas = Object.entries(commands).flatMap(([name, c]) => [c.schema?.req, c.schema?.query].filter((s) => s !== undefined).map((s) => [name, s] as const));

/** Values of every JSON type, to probe each property with. */
const PROBES: unknown[] = ["s", "", 3, -1, 0, 2.5, true, false, null, {}, { a: 1 }, [], ["x"], [1], ["x", "x"], [1, "a"]];

describe("argCheck", () => {
  it("covers every schema node-vault ships (no keyword it does not implement, at any depth)", () => {
    expect(schemas.length).toBeGreaterThan(30);
    for (const [, s] of schemas) expect(() => assertSupported(s)).not.toThrow();
  });

  it("decides like tv4 for every property of every command schema, probed with values of every type", () => {
    const v = argCheck();
    let compared = 0;
    for (const [name, s] of schemas) {
      const props = Object.keys((s as { properties?: object }).properties ?? {});
      const required = (s as { required?: string[] }).required ?? [];
      const base: Record<string, unknown> = {};
      for (const r of required) base[r] = "x";
      for (const p of props) {
        for (const probe of PROBES) {
          const args = { ...base, [p]: probe };
          expect({ name, p, probe, ours: v.validate(args, s) }).toEqual({ name, p, probe, ours: tv4.validate(args, s) });
          compared++;
        }
      }
      // Missing required properties.
      if (required.length > 0) expect({ name, ours: v.validate({}, s) }).toEqual({ name, ours: tv4.validate({}, s) });
    }
    expect(compared).toBeGreaterThan(500);
  });

  it("refuses a keyword it does not implement, and reports the failing path", () => {
    const v = argCheck();
    expect(() => v.validate("a", { enum: ["a"] })).toThrow(/does not implement the schema keyword "enum"/);
    expect(() => v.validate({}, { type: "object", properties: { a: { type: "array", items: { pattern: "x" } } } })).toThrow(/"pattern" \(at \/a\/items\)/);
    expect(v.validate({ lease_id: 3 }, { type: "object", properties: { lease_id: { type: "string" } } })).toBe(false);
    expect(v.error).toEqual({ message: "Invalid type: integer (expected string)", dataPath: "/lease_id" });
  });
});
