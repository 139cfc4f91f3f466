/** Go-flavoured encodings and small helpers shared by the double's modules. */
import { randomBytes } from "node:crypto";
import type { Stamp } from "./clock.js";

/** Go's hashicorp/go-multierror rendering. */
export function multiError(...msgs: string[]): string {
  const head = msgs.length === 1 ? "1 error occurred:" : `${msgs.length} errors occurred:`;
  return `${head}\n${msgs.map((m) => `\t* ${m}`).join("\n")}\n\n`;
}

export type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Recursively sorts object keys (Go marshals map[string]interface{} with sorted keys). */
export function sortDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortDeep);
  if (isObj(v)) {
    // Without a prototype: a key "__proto__" (a Go map carries any key) stays a key.
    const out = Object.create(null) as Obj;
    for (const k of Object.keys(v).sort()) out[k] = sortDeep(v[k]);
    return out;
  }
  return v;
}

/** JSON like Go's encoding/json with HTML escaping. */
export function goJson(v: unknown): string {
  return JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

export function clone<T>(v: T): T {
  return structuredClone(v);
}

const B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
export function randomBase62(n: number): string {
  let s = "";
  while (s.length < n) {
    for (const b of randomBytes(n * 2)) {
      if (b < 248 && s.length < n) s += B62[b % 62];
    }
  }
  return s;
}

export function hex(n: number): string {
  return randomBytes(Math.ceil(n / 2)).toString("hex").slice(0, n);
}

/** RFC 3339 with up to nine fractional digits, trailing zeros trimmed (Go's RFC3339Nano). */
export function fmtTime(s: Stamp): string {
  const iso = new Date(s.ms).toISOString();
  const frac = (iso.slice(20, 23) + String(s.ns).padStart(6, "0")).replace(/0+$/, "");
  return `${iso.slice(0, 19)}${frac ? `.${frac}` : ""}Z`;
}

/** Go strconv.ParseBool. */
export function parseGoBool(s: string): boolean | undefined {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(s)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(s)) return false;
  return undefined;
}

/** Go strconv.Atoi. */
export function parseGoInt(s: string): number | undefined {
  if (!/^[+-]?\d+$/.test(s)) return undefined;
  const n = parseInt(s, 10);
  return Number.isSafeInteger(n) ? n : undefined;
}

export function normMount(p: string): string {
  const t = p.replace(/^\/+|\/+$/g, "");
  if (!t) throw new Error("mount path must not be empty");
  return `${t}/`;
}

export function trimSlashes(p: string): string {
  return p.replace(/^\/+|\/+$/g, "");
}

/** Weak decode of a number (int or numeric string), as Vault's mapstructure does. */
export function weakInt(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isFinite(v)) return Math.trunc(v);
  if (typeof v === "string" && /^[+-]?\d+$/.test(v.trim())) return parseInt(v.trim(), 10);
  return undefined;
}

export function weakString(v: unknown): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return "";
}

export function versionList(v: unknown): number[] | undefined {
  if (Array.isArray(v)) {
    const out: number[] = [];
    for (const x of v) {
      const n = weakInt(x);
      if (n === undefined) return undefined;
      out.push(n);
    }
    return out;
  }
  if (typeof v === "string") return v.split(",").map((x) => weakInt(x)).filter((x): x is number => x !== undefined);
  const n = weakInt(v);
  return n === undefined ? undefined : [n];
}

/** Keys directly under `prefix` ("" or ending with "/"); folders end with "/". Sorted. */
export function listKeys(all: string[], prefix: string): string[] {
  const p = prefix === "" || prefix.endsWith("/") ? prefix : `${prefix}/`;
  const out = new Set<string>();
  for (const k of all) {
    if (!k.startsWith(p) || k === p) continue;
    const rest = k.slice(p.length);
    const i = rest.indexOf("/");
    out.add(i < 0 ? rest : rest.slice(0, i + 1));
  }
  return [...out].sort();
}
