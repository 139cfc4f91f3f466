/**
 * What the operators hand a template, rebuilt from the exported manifests and sample source data:
 * VSO's `.Secrets` (the one Vault secret a resource syncs), ESO's data map (data[] by secretKey,
 * dataFrom[] extracts and generator results renamed by their rewrites). The wiring is followed from
 * the manifests (store path and version, remoteRef key and property, generator path), so a wrong
 * reference fails the byte comparison.
 */
import { readdirSync } from "node:fs";
import path from "node:path";
import type { ResolvedLayout } from "../../src/core/layout/load.js";
import type { K8sObject, Manifest } from "../../src/core/export/model.js";
import { goData } from "../support/go-template.js";
import { ROOT } from "../helpers.js";

/** The layouts every export test covers: the example and the feature layouts kept beside the tests. */
export const LAYOUTS = [path.join(ROOT, "vault-layout.example.json"), ...readdirSync(path.join(ROOT, "test/export/layouts")).sort().map((f) => path.join(ROOT, "test/export/layouts", f))];

/** The sample key of an issue response (certificate, private_key, issuing_ca, ca_chain). */
export const PKI_SAMPLE = "\0pki";

export type SampleData = Map<string, Record<string, unknown>>;

/** The layout source a Vault path (mount + path) belongs to. */
function sourceAt(layout: ResolvedLayout, full: string): string {
  for (const [name, s] of layout.sources) {
    const p = s.type === "kv" ? `${s.mount}/${s.path}` : s.path;
    if (p === full) return name;
  }
  throw new Error(`no source at ${full}`);
}

function dataOf(samples: SampleData, name: string): Record<string, unknown> {
  const d = samples.get(name);
  if (!d) throw new Error(`no sample data for ${name}`);
  return d;
}

/** VSO: `.Secrets` of the source the resource points at (mount + path), checked against the layout. */
export function vsoInput(layout: ResolvedLayout, m: K8sObject, samples: SampleData): unknown {
  const spec = m.spec as { mount: string; path: string; type?: string; version?: number };
  if (m.kind === "VaultPKISecret") return goData({ Secrets: dataOf(samples, PKI_SAMPLE) });
  const name = sourceAt(layout, `${spec.mount}/${spec.path}`);
  const s = layout.sources.get(name);
  if (s?.type === "kv") {
    if (spec.type !== (s.kvVersion === 1 ? "kv-v1" : "kv-v2")) throw new Error(`${m.metadata.name}: KV type ${spec.type}`);
    if (spec.version !== s.version) throw new Error(`${m.metadata.name}: version ${spec.version}`);
  }
  return goData({ Secrets: dataOf(samples, name) });
}

interface Rewrite {
  regexp: { source: string; target: string };
}

function rewritten(data: Record<string, unknown>, rewrite: Rewrite[] | undefined): Record<string, unknown> {
  let out = data;
  for (const r of rewrite ?? []) {
    const re = new RegExp(r.regexp.source);
    out = Object.fromEntries(Object.entries(out).map(([k, v]) => [k.replace(re, r.regexp.target.replace(/\$(\d)/g, "$$$1")), v]));
  }
  return out;
}

/** ESO: the ExternalSecret's data map (strings), as ESO builds it before executing the template. */
export function esoInput(layout: ResolvedLayout, es: K8sObject, all: Manifest[], samples: SampleData): unknown {
  const byName = (kind: string, name: string): K8sObject => {
    const f = all.find((x) => x.object.kind === kind && x.object.metadata.name === name);
    if (!f) throw new Error(`no ${kind} ${name}`);
    return f.object;
  };
  const storeSource = (storeName: string, key: string, version: string | undefined): Record<string, unknown> => {
    const store = byName("SecretStore", storeName).spec as { provider: { vault: { path: string; version: string } } };
    const name = sourceAt(layout, `${store.provider.vault.path}/${key}`);
    const s = layout.sources.get(name);
    if (s?.type === "kv" && store.provider.vault.version !== `v${s.kvVersion ?? 2}`) throw new Error(`store ${storeName} has the wrong KV version`);
    if (s?.type === "kv" && version !== (s.version === undefined ? undefined : String(s.version))) throw new Error(`wrong version for ${name}`);
    return dataOf(samples, name);
  };
  const spec = es.spec as {
    data?: Array<{ secretKey: string; remoteRef: { key: string; property: string; version?: string }; sourceRef: { storeRef: { name: string } } }>;
    dataFrom?: Array<{ extract?: { key: string; version?: string }; sourceRef: { storeRef?: { name: string }; generatorRef?: { name: string } }; rewrite?: Rewrite[] }>;
  };
  const map: Record<string, unknown> = {};
  for (const d of spec.data ?? []) {
    const src = storeSource(d.sourceRef.storeRef.name, d.remoteRef.key, d.remoteRef.version);
    if (!(d.remoteRef.property in src)) throw new Error(`property ${d.remoteRef.property} missing`);
    map[d.secretKey] = src[d.remoteRef.property];
  }
  for (const d of spec.dataFrom ?? []) {
    let src: Record<string, unknown>;
    if (d.sourceRef.generatorRef) {
      const g = byName("VaultDynamicSecret", d.sourceRef.generatorRef.name).spec as { path: string };
      src = /\/issue\//.test(g.path) ? dataOf(samples, PKI_SAMPLE) : dataOf(samples, sourceAt(layout, g.path.replace(/^\//, "")));
    } else src = storeSource((d.sourceRef.storeRef as { name: string }).name, (d.extract as { key: string }).key, d.extract?.version);
    Object.assign(map, rewritten(src, d.rewrite));
  }
  return goData(map);
}
