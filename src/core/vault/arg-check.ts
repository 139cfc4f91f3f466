/**
 * node-vault checks every request and every command's arguments against small JSON schemas with
 * tv4, which builds a fresh validator context per call (about 100 µs a request, the largest
 * single cost of a no-op run after the file system). Its config takes a `tv4` replacement: this is
 * one for exactly the keywords node-vault's command schemas use (type, properties, required,
 * items, minimum, minItems, uniqueItems). A schema with another JSON Schema keyword tv4 would
 * enforce is refused loudly, so a node-vault update that starts using one fails the tests instead
 * of passing unchecked arguments; a name that is no keyword at all is ignored, as tv4 ignores it
 * (some of node-vault's schemas have misplaced property names at that level).
 */
type Schema = {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  minimum?: number;
  minItems?: number;
  uniqueItems?: boolean;
};

/** JSON Schema draft-4 keywords tv4 enforces that this check does not implement. */
const UNIMPLEMENTED = new Set([
  "enum",
  "pattern",
  "minLength",
  "maxLength",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "multipleOf",
  "maxItems",
  "additionalItems",
  "minProperties",
  "maxProperties",
  "additionalProperties",
  "patternProperties",
  "dependencies",
  "allOf",
  "anyOf",
  "oneOf",
  "not",
  "format",
  "$ref",
  "definitions",
]);

/** Throws when the schema (at any depth) uses a keyword tv4 would enforce and this does not. */
export function assertSupported(s: unknown, at = ""): void {
  if (s === null || typeof s !== "object") return;
  for (const k of Object.keys(s)) if (UNIMPLEMENTED.has(k)) throw new Error(`vault-render's node-vault argument check does not implement the schema keyword "${k}" (at ${at || "/"})`);
  const o = s as Schema;
  for (const [k, sub] of Object.entries(o.properties ?? {})) assertSupported(sub, `${at}/${k}`);
  if (o.items) assertSupported(o.items, `${at}/items`);
}

export interface ArgCheckError {
  message: string;
  dataPath: string;
}

function typeOf(v: unknown): string[] {
  if (v === null) return ["null"];
  if (Array.isArray(v)) return ["array"];
  if (typeof v === "number") return Number.isInteger(v) ? ["integer", "number"] : ["number"];
  return [typeof v];
}

function check(v: unknown, s: Schema, at: string): ArgCheckError | null {
  if (s.type !== undefined) {
    const want = Array.isArray(s.type) ? s.type : [s.type];
    const got = typeOf(v);
    if (!want.some((w) => got.includes(w))) return { message: `Invalid type: ${got[0]} (expected ${want.join("/")})`, dataPath: at };
  }
  if (typeof v === "number" && s.minimum !== undefined && v < s.minimum) return { message: `Value ${v} is less than minimum ${s.minimum}`, dataPath: at };
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    for (const r of s.required ?? []) if (!(r in o) || o[r] === undefined) return { message: `Missing required property: ${r}`, dataPath: at };
    for (const [k, sub] of Object.entries(s.properties ?? {})) {
      if (o[k] === undefined) continue;
      const e = check(o[k], sub, `${at}/${k}`);
      if (e) return e;
    }
  }
  if (Array.isArray(v) && s.minItems !== undefined && v.length < s.minItems) return { message: `Array is too short (${v.length}), minimum ${s.minItems}`, dataPath: at };
  if (Array.isArray(v) && s.uniqueItems === true) {
    const seen = new Set(v.map((x) => JSON.stringify(x)));
    if (seen.size < v.length) return { message: "Array items are not unique", dataPath: at };
  }
  if (Array.isArray(v) && s.items) {
    for (let i = 0; i < v.length; i++) {
      const e = check(v[i], s.items, `${at}/${i}`);
      if (e) return e;
    }
  }
  return null;
}

const vetted = new WeakSet<object>();
function assertSupportedOnce(schema: unknown): void {
  if (schema === null || typeof schema !== "object" || vetted.has(schema)) return;
  assertSupported(schema);
  vetted.add(schema);
}

/** A drop-in for the part of tv4 node-vault uses: `validate()` and the last `error`. */
export function argCheck(): { validate: (data: unknown, schema: unknown) => boolean; error: ArgCheckError | null } {
  const api = {
    error: null as ArgCheckError | null,
    validate(data: unknown, schema: unknown): boolean {
      assertSupportedOnce(schema);
      api.error = check(data, schema as Schema, "");
      return api.error === null;
    },
  };
  return api;
}
