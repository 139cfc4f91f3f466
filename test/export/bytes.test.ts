/**
 * Proof of bytes: every exported template (VSO transformation templates, ESO target.template data),
 * parsed back from the YAML text, rendered by the Go template evaluator against the data the
 * operator would hand it, equals what vault-render's own renderers write, byte for byte, for
 * ordinary values and for the hostile values of the dotenv corpus that the product accepts.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { describe, expect, it } from "vitest";
import { exportLayout, manifestsYaml } from "../../src/core/export/export.js";
import type { ExportTarget } from "../../src/core/export/export.js";
import type { K8sObject, Manifest } from "../../src/core/export/model.js";
import { loadLayout } from "../../src/core/layout/load.js";
import type { ResolvedLayout } from "../../src/core/layout/load.js";
import { isPki, pkiFiles } from "../../src/core/layout/outputs.js";
import { renderOutput, sourceNeeds } from "../../src/core/render/index.js";
import type { TemplatePart } from "../../src/core/render/template.js";
import { pemBlock } from "../../src/core/vault/pki.js";
import { secretKey } from "../../src/core/export/names.js";
import { renderGo } from "../support/go-template.js";
import { ROOT } from "../helpers.js";
import { LAYOUTS, PKI_SAMPLE, esoInput, vsoInput } from "./operators.js";
import type { SampleData } from "./operators.js";

interface Corpus {
  values: Array<{ id: string; value: string }>;
}
const corpusFile = path.join(ROOT, "test/dotenv/corpus.json");
const sharedCorpus = path.resolve(ROOT, "../shared/dotenv-corpus.json");

function corpusValues(): Array<{ id: string; value: string }> {
  for (const f of [corpusFile, sharedCorpus]) {
    try {
      return (JSON.parse(readFileSync(f, "utf8")) as Corpus).values;
    } catch {
      // next
    }
  }
  return [];
}

/** Values beyond the dotenv corpus that JSON, raw and template outputs carry. */
const EXTRA = [
  "plain",
  "",
  'quote " and \\ backslash',
  "control \u0000\u0001\u0008\t\n\u000b\u000c\r\u001f end",
  "line\u2028sep\u2029para",
  "<html> & 'apos'",
  "{{ not a template }}",
  "  \u00a0padded\ufeff \u3000",
  "\u0085next-line kept by JS trim",
  "emoji 🔑 ünïcödé",
  "$HOME ${VAR} `tick`",
  "trailing backslash \\",
  "a\\nb literal backslash-n",
];

/**
 * A lone surrogate (JSON "\ud800") has no UTF-8 form: Go's JSON decoder turns it into U+FFFD before
 * a template sees it, so no operator can write vault-render's escaped form (docs/kubernetes.md).
 */
const wellFormed = (s: string) => !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
const HOSTILE = [...corpusValues(), ...EXTRA.map((value, i) => ({ id: `extra${i}`, value }))].filter((h) => wellFormed(h.value));

/** Every key a layout's outputs reference, per source, plus a few more for whole-source (`from`) outputs. */
async function sampleKeys(layout: ResolvedLayout): Promise<Map<string, Set<string>>> {
  const keys = new Map<string, Set<string>>();
  const add = (s: string, k: string) => (keys.get(s) ?? keys.set(s, new Set()).get(s))?.add(k);
  const needs = await sourceNeeds(layout);
  for (const o of layout.outputs) {
    if (isPki(o)) continue;
    const refs: string[] = [];
    if (o.format === "raw") refs.push(o.value);
    else if (o.format === "template") {
      for (const p of needs.templates.get(o.file) ?? []) if ("ref" in p) refs.push(p.ref);
    } else {
      refs.push(...Object.values(o.keys ?? {}));
      for (const f of o.from ?? []) for (const k of ["ALPHA", "Zeta", "beta_2", "_under"]) add(typeof f === "string" ? f : f.source, k);
    }
    for (const r of refs) add(r.slice(0, r.indexOf(".")), r.slice(r.indexOf(".") + 1));
  }
  return keys;
}

const BINARY = Buffer.from([0, 1, 2, 0xfe, 0xff, 10, 13, 0x80, 0x7f, 65]);

/** Sample data: every value `value` (base64 keys get base64 of something, the others the value itself). */
function samples(keys: Map<string, Set<string>>, value: (key: string) => string): SampleData {
  const out: SampleData = new Map();
  for (const [s, ks] of keys) {
    const d: Record<string, unknown> = {};
    for (const k of ks) {
      if (k === "blob") d[k] = BINARY.toString("base64");
      else if (k === "text64") d[k] = Buffer.from(value(k), "utf8").toString("base64");
      else d[k] = value(k);
    }
    out.set(s, d);
  }
  out.set(PKI_SAMPLE, {
    certificate: "-----BEGIN CERTIFICATE-----\nLEAF\n-----END CERTIFICATE-----",
    private_key: "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n",
    issuing_ca: "-----BEGIN CERTIFICATE-----\nISSUER\n-----END CERTIFICATE-----",
    ca_chain: ["-----BEGIN CERTIFICATE-----\nISSUER\n-----END CERTIFICATE-----", "-----BEGIN CERTIFICATE-----\nROOT\n-----END CERTIFICATE-----\n"],
  });
  return out;
}

/** The manifests as the cluster gets them: the YAML text parsed back. */
function parsedBack(manifests: Manifest[]): Manifest[] {
  const docs = YAML.parseAllDocuments(manifestsYaml(manifests, ["header"])).map((d) => d.toJS() as K8sObject);
  expect(docs).toHaveLength(manifests.length);
  return manifests.map((m, i) => ({ ...m, object: docs[i] as K8sObject }));
}

function templatesOf(m: K8sObject): Record<string, string> {
  const spec = m.spec as { destination?: { transformation: { templates: Record<string, { text: string }> } }; target?: { template: { data: Record<string, string> } } };
  if (spec.destination) return Object.fromEntries(Object.entries(spec.destination.transformation.templates).map(([k, t]) => [k, t.text]));
  return spec.target?.template.data ?? {};
}

interface Compared {
  compared: number;
  refused: number;
}

/** One export per layout and target (parsed back from its YAML), shared by every sample value. */
const prepared = new Map<string, Promise<{ layout: ResolvedLayout; manifests: Manifest[]; keys: Map<string, Set<string>>; templates: Map<string, TemplatePart[]> }>>();
function prepare(layoutFile: string, to: ExportTarget) {
  const id = `${to} ${layoutFile}`;
  let p = prepared.get(id);
  if (!p) {
    p = (async () => {
      const layout = await loadLayout(layoutFile, {});
      const res = await exportLayout(layout, { to, intervalMs: 300_000 });
      return { layout, manifests: parsedBack(res.manifests), keys: await sampleKeys(layout), templates: (await sourceNeeds(layout)).templates };
    })();
    prepared.set(id, p);
  }
  return p;
}

async function compareAll(layoutFile: string, to: ExportTarget, value: (key: string) => string, tally: Compared): Promise<void> {
  const { layout, manifests, keys, templates } = await prepare(layoutFile, to);
  const data = samples(keys, value);
  const results = new Map([...data].map(([s, d]) => [s, { data: d }]));
  for (const m of manifests) {
    if (m.output === undefined) continue;
    const o = layout.outputs[m.output];
    if (o === undefined) throw new Error("no output");
    const input = to === "vso" ? vsoInput(layout, m.object, data) : esoInput(layout, m.object, manifests, data);
    const texts = templatesOf(m.object);
    if (isPki(o)) {
      const pki = data.get(PKI_SAMPLE) as { certificate: string; private_key: string; issuing_ca: string; ca_chain: string[] };
      const chain = (to === "vso" ? pki.ca_chain : [pki.issuing_ca]).map(pemBlock).join("");
      const want: Record<string, string> = { cert: pemBlock(pki.certificate), key: pemBlock(pki.private_key), ca: chain, fullchain: pemBlock(pki.certificate) + chain };
      for (const [part, file] of Object.entries(pkiFiles(o))) {
        expect(renderGo(texts[secretKey(file)] as string, input).toString("utf8"), `${file} (${to})`).toBe(want[part]);
        tally.compared++;
      }
      continue;
    }
    let expected: Buffer;
    try {
      expected = (await renderOutput(o, results, layout.dir, templates)).bytes;
    } catch {
      tally.refused++;
      continue;
    }
    const text = texts[secretKey(o.file)];
    expect(text, `${o.file}: template`).toBeTypeOf("string");
    const got = renderGo(text as string, input);
    expect(got.equals(expected), `${path.basename(layoutFile)} ${o.file} (${to}): got ${JSON.stringify(got.toString("latin1"))}, want ${JSON.stringify(expected.toString("latin1"))}`).toBe(true);
    tally.compared++;
  }
}

describe.each(["vso", "eso"] as const)("exported templates write vault-render's bytes (--to %s)", (to) => {
  it.each(LAYOUTS.map((f) => [path.basename(f), f]))("%s: ordinary values", async (_n, f) => {
    const tally = { compared: 0, refused: 0 };
    await compareAll(f, to, (k) => `value-of-${k}`, tally);
    expect(tally.refused).toBe(0);
    expect(tally.compared).toBeGreaterThan(5);
  });

  it.each(LAYOUTS.map((f) => [path.basename(f), f]))("%s: hostile values (dotenv corpus and more)", async (_n, f) => {
    expect(HOSTILE.length).toBeGreaterThan(40);
    const tally = { compared: 0, refused: 0 };
    for (const h of HOSTILE) await compareAll(f, to, () => h.value, tally);
    if (process.env.VR_EXPORT_TALLY) console.log(to, path.basename(f), HOSTILE.length, tally);
    // Hostile values are refused by some dialects, and accepted (and compared) by others.
    expect(tally.compared).toBeGreaterThan(HOSTILE.length * 3);
    expect(tally.refused).toBeGreaterThan(0);
  });
});
