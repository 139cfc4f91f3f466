/**
 * Rendering: an output spec plus the data of its sources becomes bytes. Strict and
 * all-or-nothing: a missing source or key fails the whole output. Content is validated before it
 * can be written (JSON re-parsed, dotenv refusal rules).
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { SourceUnavailable, VrError } from "../support/errors.js";
import type { FileOutput } from "../layout/schema.js";
import type { ResolvedLayout } from "../layout/load.js";
import { isFileOutput, outputId } from "../layout/outputs.js";
import type { SourceData } from "../vault/kv.js";
import { encodeEnvFile } from "./dotenv.js";
import type { TemplatePart } from "./template.js";
import { parseTemplate, renderTemplate, templateRefs } from "./template.js";
import { cutText } from "../support/redact.js";

export interface Rendered {
  bytes: Buffer;
  /** Output key → value text, for env/json outputs (hashed into state; never logged). */
  keys?: Map<string, string>;
}

/** Why a source is not available for rendering: the source's own error (its exit code too), kept as `error`. */
export type SourceResults = ReadonlyMap<string, SourceData | Error>;

/** The text of a Vault value: strings as they are, other JSON values as JSON. */
function valueText(v: unknown): string {
  return typeof v === "string" ? v : JSON.stringify(v);
}

function splitRef(ref: string): [string, string] {
  const i = ref.indexOf(".");
  return [ref.slice(0, i), ref.slice(i + 1)];
}

function getData(results: SourceResults, source: string, file: string): SourceData {
  const r = results.get(source);
  if (!r) throw new VrError("RENDER", `${file}: unknown source "${source}"`, { hint: 'define it under "sources" in the layout' });
  if (r instanceof Error) throw new SourceUnavailable(source, r);
  return r;
}

function lookupValue(results: SourceResults, ref: string, file: string): unknown {
  const [source, key] = splitRef(ref);
  const d = getData(results, source, file);
  if (!Object.prototype.hasOwnProperty.call(d.data, key)) {
    throw new VrError("MISSING_KEY", `${file}: key "${key}" not found in source "${source}"${d.path ? ` (${d.path})` : ""}`, {
      hint: `present keys: ${cutText(Object.keys(d.data).sort().join(", "), 200) || "none"}`,
    });
  }
  return d.data[key];
}

/** Entries of an env/json output in order: explicit keys first (layout order), then each `from` source's keys sorted. */
function collectEntries(o: Extract<FileOutput, { format: "env" | "json" }>, results: SourceResults): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  const seen = new Map<string, string>();
  const add = (name: string, value: unknown, origin: string) => {
    const prev = seen.get(name);
    if (prev !== undefined) {
      throw new VrError("RENDER", `${o.file}: key "${name}" comes from both ${prev} and ${origin}`, { hint: 'rename one with "keys" or a "prefix"' });
    }
    seen.set(name, origin);
    out.push([name, value]);
  };
  for (const [name, ref] of Object.entries(o.keys ?? {})) add(name, lookupValue(results, ref, o.file), ref);
  for (const f of o.from ?? []) {
    const source = typeof f === "string" ? f : f.source;
    const prefix = typeof f === "string" ? "" : (f.prefix ?? "");
    const d = getData(results, source, o.file);
    for (const k of Object.keys(d.data).sort()) add(prefix + k, d.data[k], `${source}.${k}`);
  }
  if (out.length === 0 && !o.allowEmpty) {
    throw new VrError("RENDER", `${o.file}: renders no keys (its sources hold none): refusing to write an empty ${o.format === "env" ? ".env file" : "JSON object"}`, {
      hint: 'check the secret in Vault; set "allowEmpty": true on the output if an empty file is intended',
    });
  }
  return out;
}

/** Which sources an output needs (templates are parsed for it). */
export async function outputSources(o: FileOutput, layoutDir: string, templates: Map<string, TemplatePart[]>): Promise<string[]> {
  let refs: string[] = [];
  if (o.format === "raw") refs = [o.value];
  else if (o.format === "template") refs = templateRefs(await loadTemplate(o, layoutDir, templates));
  else {
    refs = Object.values(o.keys ?? {});
    for (const f of o.from ?? []) refs.push(`${typeof f === "string" ? f : f.source}.*`);
  }
  return [...new Set(refs.map((r) => splitRef(r)[0]))];
}

async function loadTemplate(o: Extract<FileOutput, { format: "template" }>, layoutDir: string, cache: Map<string, TemplatePart[]>): Promise<TemplatePart[]> {
  const cached = cache.get(o.file);
  if (cached) return cached;
  let text: string;
  let where: string;
  if (o.inline !== undefined) {
    text = o.inline;
    where = `${o.file} (inline template)`;
  } else {
    const file = path.resolve(layoutDir, o.template as string);
    where = o.template as string;
    try {
      text = await readFile(file, "utf8");
    } catch (e) {
      throw new VrError("TEMPLATE", `${o.file}: cannot read template ${file}: ${(e as NodeJS.ErrnoException).code ?? "error"}`);
    }
  }
  const parts = parseTemplate(text, where);
  cache.set(o.file, parts);
  return parts;
}

export async function renderOutput(o: FileOutput, results: SourceResults, layoutDir: string, templates: Map<string, TemplatePart[]>): Promise<Rendered> {
  switch (o.format) {
    case "raw": {
      const v = valueText(lookupValue(results, o.value, o.file));
      let bytes: Buffer;
      if (o.decode === "base64") {
        const clean = v.replace(/\s+/g, "");
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.length % 4 !== 0) {
          throw new VrError("RENDER", `${o.file}: the value of ${o.value} is not valid base64`);
        }
        bytes = Buffer.from(clean, "base64");
      } else {
        bytes = Buffer.from(v, "utf8");
      }
      if (o.newline && bytes[bytes.length - 1] !== 0x0a) bytes = Buffer.concat([bytes, Buffer.from("\n")]);
      return { bytes };
    }
    case "json": {
      const entries = collectEntries(o, results);
      const obj: Record<string, unknown> = {};
      for (const [k, v] of entries) Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true });
      const text = JSON.stringify(obj, null, 2) + "\n";
      JSON.parse(text); // content gate: what we write must parse
      return { bytes: Buffer.from(text, "utf8"), keys: new Map(entries.map(([k, v]) => [k, valueText(v)])) };
    }
    case "env": {
      const entries = collectEntries(o, results).map(([key, v]) => ({ key, value: valueText(v) }));
      const text = encodeEnvFile(entries, (o.dialect ?? "portable"), { file: o.file });
      return { bytes: Buffer.from(text, "utf8"), keys: new Map(entries.map((e) => [e.key, e.value])) };
    }
    case "template": {
      const parts = await loadTemplate(o, layoutDir, templates);
      // A missing key names its place: the template file's line and column (or the inline text's).
      const where = o.inline !== undefined ? o.file : `${o.file}: ${o.template as string}`;
      const text = renderTemplate(parts, (ref, at) => valueText(lookupValue(results, ref, at)), where);
      return { bytes: Buffer.from(text, "utf8") };
    }
  }
}

export interface SourceNeeds {
  templates: Map<string, TemplatePart[]>;
  /** Output id → the sources it needs, or why that cannot be known (a broken template). */
  needs: Map<string, string[] | Error>;
  /** Every needed source the layout defines. */
  known: string[];
}

/** Which sources each file output needs (templates are parsed here, so a broken one fails alone). */
export async function sourceNeeds(layout: Pick<ResolvedLayout, "outputs" | "dir" | "sources">): Promise<SourceNeeds> {
  const templates = new Map<string, TemplatePart[]>();
  const needs = new Map<string, string[] | Error>();
  const wanted = new Set<string>();
  for (const o of layout.outputs) {
    if (!isFileOutput(o)) continue;
    try {
      const names = await outputSources(o, layout.dir, templates);
      needs.set(outputId(o), names);
      names.forEach((n) => wanted.add(n));
    } catch (e) {
      needs.set(outputId(o), e as Error);
    }
  }
  return { templates, needs, known: [...wanted].filter((n) => layout.sources.has(n)) };
}
