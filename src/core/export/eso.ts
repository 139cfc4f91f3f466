/**
 * `export --to eso`: External Secrets Operator (external-secrets.io/v1). One SecretStore per KV
 * mount and version (the store's `path` is the mount, `version` v1/v2; a generic read is a v1
 * store on its first path segment), AppRole auth from one Secret holding role_id and secret_id;
 * one ExternalSecret per output whose `target.template` (engineVersion v2) writes the file's bytes
 * under one key. Several sources are fine: each KV key is a `data[]` entry named `k.<source>.<key>`,
 * each whole source (`from`) a `dataFrom[]` extract rewritten to `f.<source>.<key>`. Leases and
 * certificates come from the generators.external-secrets.io VaultDynamicSecret generator.
 */
import type { OutputSpec, PkiOutput, SourceSpec } from "../layout/schema.js";
import { isPki, outputId, pkiFiles } from "../layout/outputs.js";
import { parseDuration } from "../support/duration.js";
import type { K8sObject, Manifest } from "./model.js";
import { hookRestarts, kvVersionOf, outputWhere, splitMount } from "./model.js";
import { NameSet, goDuration, secretKey } from "./names.js";
import type { Access } from "./templates.js";
import { goQuote } from "./templates.js";
import type { ExportContext } from "./vso.js";
import { APPROLE_SECRET, CA_SECRET, closeOnlyFindings, fileTemplate, pkiSetTemplates, validateFinding } from "./vso.js";

const ESO_API = "external-secrets.io/v1";
const GENERATOR_API = "generators.external-secrets.io/v1alpha1";
const SECRET_KEY_RE = /^[-._a-zA-Z0-9]+$/;

function meta(name: string, namespace: string | undefined): K8sObject["metadata"] {
  return namespace ? { name, namespace } : { name };
}

/** The provider block shared by stores and generators (no path/version: those are per store). */
function providerBase(cx: ExportContext): Record<string, unknown> {
  const v = cx.layout.vault;
  const p: Record<string, unknown> = { server: v.address };
  if (v.namespace) p.namespace = v.namespace;
  if (v.caCertFile) p.caProvider = { type: "Secret", name: CA_SECRET, key: "ca.crt" };
  p.auth = {
    appRole: {
      path: cx.layout.approle.mount,
      roleRef: { name: APPROLE_SECRET, key: "role_id" },
      secretRef: { name: APPROLE_SECRET, key: "secret_id" },
    },
  };
  return p;
}

interface StoreRef {
  name: string;
  key: string;
  version?: number;
}

/** Where a source's data comes from in ESO. */
type Origin = { kind: "store"; store: StoreRef } | { kind: "generator"; name: string };

/** One ExternalSecret's data wiring, filled while its template text is generated. */
class Wiring implements Access {
  readonly data: Array<Record<string, unknown>> = [];
  readonly dataFrom: Array<Record<string, unknown>> = [];
  private readonly keyNames = new Map<string, string>();
  private readonly extracted = new Set<string>();

  constructor(private readonly origin: (source: string) => Origin) {}

  private marker(source: string): string {
    return `f.${source}.`;
  }

  /** Every key of `source`, renamed with its marker (a store extract, or a generator's result). */
  private extract(source: string): void {
    if (this.extracted.has(source)) return;
    this.extracted.add(source);
    const o = this.origin(source);
    const rewrite = [{ regexp: { source: "^(.*)$", target: `${this.marker(source)}$1` } }];
    if (o.kind === "generator") {
      this.dataFrom.push({ sourceRef: { generatorRef: { apiVersion: GENERATOR_API, kind: "VaultDynamicSecret", name: o.name } }, rewrite });
    } else {
      const extract: Record<string, unknown> = { key: o.store.key };
      if (o.store.version !== undefined) extract.version = String(o.store.version);
      this.dataFrom.push({ extract, sourceRef: { storeRef: { name: o.store.name, kind: "SecretStore" } }, rewrite });
    }
  }

  value(source: string, key: string): string {
    const o = this.origin(source);
    if (o.kind === "generator") {
      this.extract(source);
      return `(index . ${goQuote(this.marker(source) + key)})`;
    }
    const id = `${source}\0${key}`;
    let name = this.keyNames.get(id);
    if (name === undefined) {
      const plain = `k.${source}.${key}`;
      name = SECRET_KEY_RE.test(plain) ? plain : `k.${source}.${this.keyNames.size}`;
      this.keyNames.set(id, name);
      const remoteRef: Record<string, unknown> = { key: o.store.key, property: key };
      if (o.store.version !== undefined) remoteRef.version = String(o.store.version);
      this.data.push({ secretKey: name, remoteRef, sourceRef: { storeRef: { name: o.store.name, kind: "SecretStore" } } });
    }
    return `(index . ${goQuote(name)})`;
  }

  range(source: string, k: string, v: string): { open: string; key: string; close: string } {
    this.extract(source);
    const m = goQuote(this.marker(source));
    return { open: `{{ range ${k}, ${v} := . }}{{ if hasPrefix ${m} ${k} }}`, key: `trimPrefix ${m} ${k}`, close: "{{ end }}{{ end }}" };
  }

  guards(): string {
    return "";
  }
}

function generatorFor(cx: ExportContext, name: string, spec: Record<string, unknown>): Manifest {
  return {
    object: { apiVersion: GENERATOR_API, kind: "VaultDynamicSecret", metadata: meta(name, cx.namespace), spec: { ...spec, resultType: "Data", provider: providerBase(cx) } },
    comment: ["Each refresh of an ExternalSecret that uses this generator creates new credentials; ESO neither renews nor revokes the leases."],
  };
}

function pkiGeneratorSpec(o: PkiOutput): Record<string, unknown> {
  const parameters: Record<string, unknown> = { common_name: o.commonName, format: "pem" };
  if (o.altNames?.length) parameters.alt_names = o.altNames.join(",");
  if (o.ipSans?.length) parameters.ip_sans = o.ipSans.join(",");
  if (o.ttl) parameters.ttl = `${Math.round(parseDuration(o.ttl) / 1000)}s`;
  if (o.privateKeyFormat) parameters.private_key_format = o.privateKeyFormat;
  return { path: `/${o.mount}/issue/${o.role}`, method: "POST", parameters };
}

function target(name: string, templates: Record<string, string>): Record<string, unknown> {
  return { name, creationPolicy: "Owner", template: { engineVersion: "v2", mergePolicy: "Replace", data: templates } };
}

export function exportEso(cx: ExportContext): { manifests: Manifest[]; skipped: number } {
  const { layout, needs } = cx;
  const names = new NameSet();
  const stores = new Map<string, Manifest>();
  const generators = new Map<string, Manifest>();
  const secrets: Manifest[] = [];
  const saidKv = new Set<string>();
  const leaseUsers = new Map<string, number>();
  let skipped = 0;

  const store = (mount: string, version: 1 | 2): string => {
    const id = `${mount}\0${version}`;
    const found = stores.get(id);
    if (found) return found.object.metadata.name;
    const name = names.claim(`vault-render-${mount}-kv${version}`);
    stores.set(id, {
      object: { apiVersion: ESO_API, kind: "SecretStore", metadata: meta(name, cx.namespace), spec: { provider: { vault: { ...providerBase(cx), path: mount, version: `v${version}` } } } },
      comment: [`KV v${version} at mount "${mount}". Needs Secret "${APPROLE_SECRET}" with keys role_id and secret_id.`],
    });
    return name;
  };

  const origin = (sourceName: string): Origin => {
    const s = layout.sources.get(sourceName) as SourceSpec;
    if (s.type === "kv") {
      const version = kvVersionOf(sourceName, s, cx.findings, saidKv);
      const ref: StoreRef = { name: store(s.mount, version), key: s.path };
      if (version === 2 && s.version !== undefined) ref.version = s.version;
      return { kind: "store", store: ref };
    }
    if (s.type === "read") {
      const { mount, rest } = splitMount(s.path);
      return { kind: "store", store: { name: store(mount, 1), key: rest } };
    }
    const gname = `vault-render-${sourceName}`;
    if (!generators.has(sourceName)) {
      const name = names.claim(gname);
      generators.set(sourceName, generatorFor(cx, name, { path: `/${s.path}`, method: "GET" }));
    }
    return { kind: "generator", name: (generators.get(sourceName) as Manifest).object.metadata.name };
  };

  layout.outputs.forEach((o: OutputSpec, i) => {
    const where = outputWhere(o, i);
    const hooks = hookRestarts(layout.raw, o.hooks ?? [], where, "eso");
    cx.findings.push(...hooks.findings);
    cx.findings.push(...validateFinding(o, where));
    if (isPki(o)) {
      const name = names.claim(o.dir);
      const gen = names.claim(`${o.dir}-issue`);
      generators.set(`\0pki${i}`, generatorFor(cx, gen, pkiGeneratorSpec(o)));
      const access = { value: (_s: string, key: string) => `(index . ${goQuote(key)})` };
      const files = pkiFiles(o);
      const templates = pkiSetTemplates(o, access, false);
      if (files.ca || files.fullchain) {
        cx.findings.push({ where, why: "ca.pem and fullchain.pem are built from issuing_ca only (the generator hands ca_chain over as JSON text): a chain with intermediates between the issuer and the root is shorter than vault-render's" });
      }
      const spec: Record<string, unknown> = {
        dataFrom: [{ sourceRef: { generatorRef: { apiVersion: GENERATOR_API, kind: "VaultDynamicSecret", name: gen } } }],
        target: target(name, templates),
      };
      const rb = o.renewBefore ?? 0.33;
      const ttlMs = o.ttl ? parseDuration(o.ttl) : undefined;
      const rbMs = typeof rb === "string" ? parseDuration(rb) : ttlMs !== undefined ? rb * ttlMs : undefined;
      if (ttlMs !== undefined && rbMs !== undefined && ttlMs > rbMs) {
        spec.refreshInterval = goDuration(Math.round((ttlMs - rbMs) / 1000) * 1000);
        cx.findings.push({ where, why: `certificates are re-issued every refreshInterval (${spec.refreshInterval as string} = ttl − renewBefore), not when due: ESO has no renewBefore and does not revoke the old ones` });
      } else {
        spec.refreshInterval = "24h";
        cx.findings.push({ where, why: "without a ttl (or with renewBefore ≥ ttl) the refresh cannot be derived: refreshInterval 24h, each refresh issues a new certificate", instead: 'set "ttl" and export again' });
      }
      secrets.push({ object: { apiVersion: ESO_API, kind: "ExternalSecret", metadata: meta(name, cx.namespace), spec }, comment: [`outputs[${i}]: ${o.dir}/ (${Object.keys(templates).join(", ")})`], output: i });
      return;
    }
    const used = needs.needs.get(outputId(o));
    if (used instanceof Error || used === undefined) {
      cx.findings.push({ where, why: `cannot be exported: ${used instanceof Error ? used.message : "its sources are unknown"}`, blocking: true });
      skipped++;
      return;
    }
    const unknown = used.find((s) => !layout.sources.has(s));
    if (unknown !== undefined) {
      cx.findings.push({ where, why: `unknown source "${unknown}"`, blocking: true });
      skipped++;
      return;
    }
    const name = names.claim(o.file);
    const wiring = new Wiring(origin);
    const text = fileTemplate(o, needs, wiring) as string;
    cx.findings.push(...closeOnlyFindings(o, needs, where));
    const spec: Record<string, unknown> = {};
    const leases = used.filter((s) => layout.sources.get(s)?.type === "lease");
    for (const s of leases) {
      leaseUsers.set(s, (leaseUsers.get(s) ?? 0) + 1);
      if (leaseUsers.get(s) === 2) cx.findings.push({ where, why: `lease source "${s}" is used by several outputs: each ExternalSecret runs the generator itself (other credentials), where vault-render shares one lease`, instead: "one output per lease source" });
    }
    if (leases.length > 0) {
      spec.refreshInterval = "1h";
      cx.findings.push({ where, why: `lease source ${leases.map((s) => `"${s}"`).join(", ")}: every refresh (refreshInterval 1h) creates new credentials; ESO does not renew leases, has no renewBefore and does not revoke the old ones`, instead: "set refreshInterval below the lease TTL, or --to vso (VaultDynamicSecret renews the lease)" });
    } else {
      spec.refreshInterval = goDuration(cx.intervalMs);
    }
    const firstStore = (wiring.data[0]?.sourceRef ?? wiring.dataFrom.find((d) => "extract" in d)?.sourceRef) as { storeRef: { name: string } } | undefined;
    if (firstStore) spec.secretStoreRef = { name: firstStore.storeRef.name, kind: "SecretStore" };
    spec.target = target(name, { [secretKey(o.file)]: text });
    if (wiring.data.length) spec.data = wiring.data;
    if (wiring.dataFrom.length) spec.dataFrom = wiring.dataFrom;
    secrets.push({ object: { apiVersion: ESO_API, kind: "ExternalSecret", metadata: meta(name, cx.namespace), spec }, comment: [`outputs[${i}]: ${o.file} (format ${o.format}${o.format === "env" ? `, dialect ${o.dialect ?? "portable"}` : ""})`], output: i });
  });

  if (layout.vault.tlsServerName) cx.findings.push({ where: "vault.tlsServerName", why: "ESO's Vault provider has no TLS server name: the certificate must match the server address" });
  if (layout.vault.skipVerify) cx.findings.push({ where: "vault.skipVerify", why: "ESO's Vault provider cannot skip TLS verification", instead: "give it the CA (caProvider)" });
  if (layout.vault.caCertFile) cx.findings.push({ where: "vault.caCert", why: `the stores read the CA from Secret "${CA_SECRET}" (key ca.crt), which the export does not create`, instead: `kubectl create secret generic ${CA_SECRET} --from-file=ca.crt=<the caCert file>` });
  cx.findings.push({ where: "auth.approle", why: `the stores log in with role_id and secret_id from Secret "${APPROLE_SECRET}", which the export does not create`, instead: `kubectl create secret generic ${APPROLE_SECRET} --from-file=role_id=agent-only/${layout.raw.auth.approle.roleIdFile} --from-file=secret_id=agent-only/${layout.raw.auth.approle.secretIdFile}` });
  if (layout.approle.secretIdWrapped) cx.findings.push({ where: "auth.approle.secretIdWrapped", why: "ESO reads a plain secret_id, not a response-wrapping token", instead: "unwrap it (vault unwrap) into the Secret" });

  const sortByName = (m: Map<string, Manifest>) => [...m.values()].sort((a, b) => (a.object.metadata.name < b.object.metadata.name ? -1 : 1));
  return { manifests: [...sortByName(stores), ...sortByName(generators), ...secrets], skipped };
}
