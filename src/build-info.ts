/**
 * What the entry knows about its build: the package version and the layout's JSON Schema written
 * at build time (dist/vault-layout.schema.json, the bytes `vault-render schema` prints, so `schema`
 * does not load zod). Read from the files beside the bundle; the single executable, which has no
 * files beside it, gets this module replaced by the two literals (esbuild.config.mjs, `--sea`).
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

export const version: string = (createRequire(import.meta.url)("../package.json") as { version: string }).version;

export function precomputedSchema(): string | null {
  try {
    return readFileSync(new URL("./vault-layout.schema.json", import.meta.url), "utf8");
  } catch {
    return null;
  }
}
