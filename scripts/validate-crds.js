#!/usr/bin/env node
/**
 * Validate exported manifests against the operators' published CRD schemas, as the API server
 * would: find the CRD of each manifest (group + kind) in ../shared/reference/k8s-crds, take the
 * served version's openAPIV3Schema, fill in its `default`s (structural defaulting), then validate
 * with ajv. Unknown fields are errors (the server's strict field validation) except under
 * x-kubernetes-preserve-unknown-fields; x-kubernetes-int-or-string accepts an integer or a string.
 * CEL rules (x-kubernetes-validations) are not evaluated.
 *
 *   node scripts/validate-crds.js                 export every kept layout (built CLI) and check it
 *   node scripts/validate-crds.js a.yaml b.yaml   check these manifest files
 *
 * One line per error, exit 1 on any; exit 0 with a message (and nothing checked) when
 * ../shared/reference/k8s-crds is absent.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Ajv from "ajv";
import YAML from "yaml";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
// VR_CRD_DIR: another place for them (a worktree that is not beside shared/).
const crdDir = process.env.VR_CRD_DIR ? path.resolve(process.env.VR_CRD_DIR) : path.resolve(repo, "../shared/reference/k8s-crds");

/** The layouts the export tests keep: the example and test/export/layouts/*.json. */
function keptLayouts() {
  const dir = path.join(repo, "test/export/layouts");
  return [path.join(repo, "vault-layout.example.json"), ...readdirSync(dir).filter((f) => f.endsWith(".json")).sort().map((f) => path.join(dir, f))];
}

/** [{ origin, doc }] of every manifest to check. */
function manifests(files) {
  const out = [];
  const add = (origin, text) => {
    for (const d of YAML.parseAllDocuments(text)) {
      if (d.errors.length) out.push({ origin, doc: null, error: d.errors[0].message });
      else if (d.contents !== null) out.push({ origin, doc: d.toJS() });
    }
  };
  if (files.length > 0) {
    for (const f of files) add(path.relative(process.cwd(), f) || f, readFileSync(f, "utf8"));
    return out;
  }
  const bin = path.join(repo, "bin/vault-render.js");
  if (!existsSync(path.join(repo, "dist/cli.js"))) {
    console.error("validate-crds: dist/cli.js is missing: run `npm run build` first");
    process.exit(2);
  }
  for (const layout of keptLayouts()) {
    for (const to of ["vso", "eso"]) {
      // --partial: what VSO cannot express is left out (and reported on stderr, not checked here).
      const text = execFileSync(process.execPath, [bin, "export", "--to", to, "--partial", "-l", layout], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
      add(`${path.relative(repo, layout)} --to ${to}`, text);
    }
  }
  return out;
}

/** Every CRD: `${group}/${version} ${kind}` → openAPIV3Schema of that served version. */
function loadCrds() {
  const map = new Map();
  for (const f of readdirSync(crdDir).filter((x) => x.endsWith(".yaml") || x.endsWith(".yml"))) {
    for (const d of YAML.parseAllDocuments(readFileSync(path.join(crdDir, f), "utf8"))) {
      const crd = d.toJS();
      if (crd?.kind !== "CustomResourceDefinition") continue;
      for (const v of crd.spec.versions ?? []) {
        if (v.served && v.schema?.openAPIV3Schema) map.set(`${crd.spec.group}/${v.name} ${crd.spec.names.kind}`, v.schema.openAPIV3Schema);
      }
    }
  }
  return map;
}

/** Structural defaulting: every absent property with a `default` gets it, recursively (arrays, maps too). */
function applyDefaults(schema, value) {
  if (schema === undefined || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) {
    if (schema.items) for (let i = 0; i < value.length; i++) value[i] = applyDefaults(schema.items, value[i]);
    return value;
  }
  for (const [k, sub] of Object.entries(schema.properties ?? {})) {
    if (!(k in value) && sub.default !== undefined) value[k] = structuredClone(sub.default);
    if (k in value) value[k] = applyDefaults(sub, value[k]);
  }
  if (schema.additionalProperties && typeof schema.additionalProperties === "object") {
    for (const k of Object.keys(value)) if (!(k in (schema.properties ?? {}))) value[k] = applyDefaults(schema.additionalProperties, value[k]);
  }
  return value;
}

/** The CRD schema for ajv: unknown fields refused where Kubernetes prunes, int-or-string expanded. */
function forAjv(schema) {
  if (schema === null || typeof schema !== "object") return schema;
  if (Array.isArray(schema)) return schema.map(forAjv);
  const out = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === "default" || k === "example") out[k] = v;
    else if (k === "properties" || k === "patternProperties") out[k] = Object.fromEntries(Object.entries(v).map(([p, s]) => [p, forAjv(s)]));
    else out[k] = forAjv(v);
  }
  if (schema["x-kubernetes-int-or-string"] && !schema.anyOf && !schema.oneOf) {
    out.anyOf = [{ type: "integer" }, { type: "string" }];
    delete out.type;
  }
  const isObject = schema.type === "object" || schema.properties !== undefined;
  if (isObject && schema.properties && schema.additionalProperties === undefined && !schema["x-kubernetes-preserve-unknown-fields"]) out.additionalProperties = false;
  return out;
}

function main() {
  if (!existsSync(crdDir)) {
    console.log(`validate-crds: ${crdDir} not found: skipped (the CRD schemas are reference data beside the repository)`);
    return 0;
  }
  const crds = loadCrds();
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  const compiled = new Map();
  let errors = 0;
  let checked = 0;
  const docs = manifests(process.argv.slice(2));
  for (const { origin, doc, error } of docs) {
    if (doc === null) {
      console.log(`${origin}: YAML: ${error}`);
      errors++;
      continue;
    }
    const id = `${doc.apiVersion} ${doc.kind}`;
    const who = `${origin}: ${doc.kind}/${doc.metadata?.name ?? "?"}`;
    const schema = crds.get(id);
    if (!schema) {
      console.log(`${who}: no CRD serves ${id}`);
      errors++;
      continue;
    }
    if (!compiled.has(id)) compiled.set(id, { schema, validate: ajv.compile(forAjv(schema)) });
    const c = compiled.get(id);
    const obj = applyDefaults(c.schema, structuredClone(doc));
    checked++;
    if (!c.validate(obj)) {
      for (const e of c.validate.errors ?? []) {
        const extra = e.keyword === "additionalProperties" ? ` (${e.params.additionalProperty})` : e.keyword === "enum" ? ` (${e.params.allowedValues.join("|")})` : "";
        console.log(`${who}: ${e.instancePath || "/"} ${e.message}${extra}`);
        errors++;
      }
    }
  }
  if (checked === 0 && errors === 0) {
    console.log("validate-crds: no manifest to check");
    return 1;
  }
  console.log(`validate-crds: ${checked} manifests against ${compiled.size} CRD schemas: ${errors} error${errors === 1 ? "" : "s"}`);
  return errors > 0 ? 1 : 0;
}

process.exitCode = main();
