/**
 * `export --to vso`: Vault Secrets Operator (secrets.hashicorp.com/v1beta1). One VaultConnection, one
 * VaultAuth (appRole), then per output one resource syncing one Vault secret into one Secret whose
 * single key holds the file (VSO replicates "a single Vault Secret to a single Kubernetes Secret"):
 * VaultStaticSecret (KV), VaultDynamicSecret (leases and generic reads), VaultPKISecret (pki).
 */
import type { ResolvedLayout } from "../layout/load.js";
import type { OutputSpec, PkiOutput } from "../layout/schema.js";
import { isPki, outputId, pkiFiles } from "../layout/outputs.js";
import type { SourceNeeds } from "../render/index.js";
import { parseDuration } from "../support/duration.js";
import type { Finding, K8sObject, Manifest } from "./model.js";
import { entrySpec, hookRestarts, kvVersionOf, outputWhere, renewalPercent, splitMount } from "./model.js";
import { NameSet, goDuration, secretKey } from "./names.js";
import type { Access } from "./templates.js";
import { envTemplate, goQuote, jsonTemplate, pkiTemplates, rawTemplate, templateTemplate } from "./templates.js";

const VSO_API = "secrets.hashicorp.com/v1beta1";
const CONNECTION_NAME = "vault-render";
export const APPROLE_SECRET = "vault-render-approle";
export const CA_SECRET = "vault-render-ca";

/** `.Secrets` of the one source: `get` (sprig) on the map; a missing key fails the sync, as in vault-render. */
const vsoAccess: Access = {
  value: (_source, key) => `(get .Secrets ${goQuote(key)})`,
  range: (_source, k, v) => ({ open: `{{ range ${k}, ${v} := .Secrets }}`, key: k, close: "{{ end }}" }),
  guards: (refs) => {
    const seen = new Set<string>();
    let out = "";
    for (const [s, k] of refs) {
      if (seen.has(k)) continue;
      seen.add(k);
      out += `{{ if not (hasKey .Secrets ${goQuote(k)}) }}{{ fail ${goQuote(`key "${k}" not found in source "${s}"`)} }}{{ end }}`;
    }
    return out;
  },
};

export interface ExportContext {
  layout: ResolvedLayout;
  needs: SourceNeeds;
  namespace: string | undefined;
  intervalMs: number;
  findings: Finding[];
}

function meta(name: string, namespace: string | undefined): K8sObject["metadata"] {
  return namespace ? { name, namespace } : { name };
}

function connectionAndAuth(cx: ExportContext): Manifest[] {
  const { layout, namespace } = cx;
  const v = layout.vault;
  const connSpec: Record<string, unknown> = { address: v.address, skipTLSVerify: v.skipVerify };
  const comment: string[] = [];
  if (v.caCertFile) {
    connSpec.caCertSecretRef = CA_SECRET;
    comment.push(`Create the CA Secret first (key ca.crt): kubectl create secret generic ${CA_SECRET} --from-file=ca.crt=${layout.raw.vault.caCert ?? "ca.pem"}`);
    cx.findings.push({ where: "vault.caCert", why: `VaultConnection reads the CA from Secret "${CA_SECRET}" (key ca.crt), which the export does not create`, instead: `kubectl create secret generic ${CA_SECRET} --from-file=ca.crt=<the caCert file>` });
  }
  if (v.tlsServerName) connSpec.tlsServerName = v.tlsServerName;
  const authSpec: Record<string, unknown> = {
    vaultConnectionRef: CONNECTION_NAME,
    method: "appRole",
    mount: layout.approle.mount,
    appRole: { roleId: `<the role_id in agent-only/${layout.raw.auth.approle.roleIdFile}>`, secretRef: APPROLE_SECRET },
  };
  if (v.namespace) authSpec.namespace = v.namespace;
  cx.findings.push({
    where: "auth.approle",
    why: `VaultAuth needs the role_id value in spec.appRole.roleId (a placeholder is written) and the secret_id in Secret "${APPROLE_SECRET}" (key id)`,
    instead: `kubectl create secret generic ${APPROLE_SECRET} --from-file=id=agent-only/${layout.raw.auth.approle.secretIdFile}`,
  });
  if (layout.approle.secretIdWrapped) {
    cx.findings.push({ where: "auth.approle.secretIdWrapped", why: "VSO reads a plain secret_id, not a response-wrapping token", instead: "unwrap it (vault unwrap) into the Secret" });
  }
  return [
    { object: { apiVersion: VSO_API, kind: "VaultConnection", metadata: meta(CONNECTION_NAME, namespace), spec: connSpec }, comment },
    {
      object: { apiVersion: VSO_API, kind: "VaultAuth", metadata: meta(CONNECTION_NAME, namespace), spec: authSpec },
      comment: [`Create the secret_id Secret first (key id): kubectl create secret generic ${APPROLE_SECRET} --from-file=id=agent-only/${layout.raw.auth.approle.secretIdFile}`, "Replace spec.appRole.roleId with the role_id."],
    },
  ];
}

/** The one template text of a file output (the output's bytes), or null for a template whose parse failed. */
export function fileTemplate(o: Exclude<OutputSpec, PkiOutput>, needs: SourceNeeds, access: Access): string | null {
  switch (o.format) {
    case "env":
      return envTemplate(entrySpec(o), o.dialect ?? "portable", access);
    case "json":
      return jsonTemplate(entrySpec(o), access);
    case "raw": {
      const i = o.value.indexOf(".");
      return rawTemplate(o.value.slice(0, i), o.value.slice(i + 1), o.decode === "base64", o.newline === true, access);
    }
    case "template": {
      const parts = needs.templates.get(o.file);
      return parts ? templateTemplate(parts, access) : null;
    }
  }
}

/** Findings about template helpers and raw decoding that the operators' functions only approach. */
export function closeOnlyFindings(o: OutputSpec, needs: SourceNeeds, where: string): Finding[] {
  const out: Finding[] = [];
  if (o.format === "raw" && o.decode === "base64") {
    out.push({ where, why: "base64 decoding uses sprig's b64dec, which writes its error text where vault-render refuses invalid base64", instead: "keep the value valid padded base64" });
  }
  if (o.format === "template") {
    const parts = needs.templates.get(o.file) ?? [];
    if (parts.some((p) => "filters" in p && p.filters.includes("base64decode"))) {
      out.push({ where, why: "the base64decode helper becomes sprig's b64dec: it needs padded base64 and writes its error text on invalid input, where vault-render also reads unpadded base64 and refuses invalid input" });
    }
  }
  return out;
}

function destination(name: string, templates: Record<string, string>): Record<string, unknown> {
  return {
    name,
    create: true,
    transformation: {
      excludeRaw: true,
      excludes: [".*"],
      templates: Object.fromEntries(Object.entries(templates).map(([k, text]) => [k, { text }])),
    },
  };
}

/** The Secret's templates of a certificate set: one per file of the set, keyed like the files. */
export function pkiSetTemplates(o: PkiOutput, access: Pick<Access, "value">, chainAsList: boolean): Record<string, string> {
  const files = pkiFiles(o);
  const templates: Record<string, string> = {};
  for (const part of ["cert", "key", "ca", "fullchain"] as const) {
    const file = files[part];
    if (file) templates[secretKey(file)] = pkiTemplates(part, access, chainAsList);
  }
  return templates;
}

export function validateFinding(o: OutputSpec, where: string): Finding[] {
  if (!("validate" in o) || o.validate === undefined) return [];
  return [{ where, why: "validate command dropped: the operator writes the Secret without running it", instead: "validate in the consuming pod (an init container or readiness probe)" }];
}

function pkiManifest(cx: ExportContext, o: PkiOutput, i: number, names: NameSet): Manifest {
  const where = outputWhere(o, i);
  const name = names.claim(o.dir);
  const spec: Record<string, unknown> = { vaultAuthRef: CONNECTION_NAME, mount: o.mount, role: o.role, commonName: o.commonName };
  if (o.altNames?.length) spec.altNames = o.altNames;
  if (o.ipSans?.length) spec.ipSans = o.ipSans;
  if (o.ttl) spec.ttl = goDuration(parseDuration(o.ttl));
  if (o.privateKeyFormat) spec.privateKeyFormat = o.privateKeyFormat;
  spec.format = "pem";
  const rb = o.renewBefore ?? 0.33;
  if (typeof rb === "string") spec.expiryOffset = goDuration(parseDuration(rb));
  else if (o.ttl) {
    spec.expiryOffset = goDuration(Math.round((rb * parseDuration(o.ttl)) / 1000) * 1000);
    cx.findings.push({ where, why: `renewBefore ${rb} of the lifetime became expiryOffset ${spec.expiryOffset as string} from the requested ttl ${o.ttl} (a role that caps the ttl shortens the lifetime, not the offset)` });
  } else {
    cx.findings.push({ where, why: `renewBefore ${rb} is a share of the certificate's lifetime, and without a ttl the lifetime is the role's: no expiryOffset (VSO renews at expiry)`, instead: 'set "ttl" or a duration renewBefore such as "240h"' });
  }
  const files = pkiFiles(o);
  const templates = pkiSetTemplates(o, vsoAccess, true);
  if (files.ca || files.fullchain) {
    cx.findings.push({ where, why: "VSO asks Vault with remove_roots_from_chain=true: when the mount's ca_chain holds the root CA, ca.pem and fullchain.pem lack it" });
  }
  const hooks = hookRestarts(cx.layout.raw, o.hooks ?? [], where, "vso");
  cx.findings.push(...hooks.findings, ...validateFinding(o, where));
  if (hooks.targets.length) spec.rolloutRestartTargets = hooks.targets;
  spec.destination = destination(name, templates);
  return { object: { apiVersion: VSO_API, kind: "VaultPKISecret", metadata: meta(name, cx.namespace), spec }, comment: [`outputs[${i}]: ${o.dir}/ (${Object.keys(templates).join(", ")})`], output: i };
}

export function exportVso(cx: ExportContext): { manifests: Manifest[]; skipped: number } {
  const { layout, needs } = cx;
  const manifests = connectionAndAuth(cx);
  const names = new NameSet();
  names.claim(CONNECTION_NAME);
  const saidKv = new Set<string>();
  const leaseUsers = new Map<string, number>();
  let skipped = 0;
  layout.outputs.forEach((o, i) => {
    const where = outputWhere(o, i);
    if (isPki(o)) {
      manifests.push(pkiManifest(cx, o, i, names));
      return;
    }
    const used = needs.needs.get(outputId(o));
    if (used instanceof Error || used === undefined) {
      cx.findings.push({ where, why: `cannot be exported: ${used instanceof Error ? used.message : "its sources are unknown"}`, blocking: true });
      skipped++;
      return;
    }
    if (used.length !== 1) {
      cx.findings.push({
        where,
        why: used.length === 0 ? "reads no Vault source, and a VSO resource syncs one" : `draws on ${used.length} sources (${used.join(", ")}); a VSO resource syncs one Vault secret into one Secret`,
        instead: used.length === 0 ? "a plain Secret or ConfigMap" : "--to eso (one ExternalSecret reads several), or one output (one Secret) per source",
        blocking: true,
      });
      skipped++;
      return;
    }
    const sourceName = used[0] as string;
    const source = layout.sources.get(sourceName);
    if (!source) {
      cx.findings.push({ where, why: `unknown source "${sourceName}"`, blocking: true });
      skipped++;
      return;
    }
    const text = fileTemplate(o, needs, vsoAccess) as string;
    cx.findings.push(...closeOnlyFindings(o, needs, where));
    const name = names.claim(o.file);
    const spec: Record<string, unknown> = { vaultAuthRef: CONNECTION_NAME };
    let kind: string;
    if (source.type === "kv") {
      kind = "VaultStaticSecret";
      const version = kvVersionOf(sourceName, source, cx.findings, saidKv);
      Object.assign(spec, { type: version === 2 ? "kv-v2" : "kv-v1", mount: source.mount, path: source.path });
      if (source.version !== undefined && version === 2) spec.version = source.version;
      spec.refreshAfter = goDuration(cx.intervalMs);
    } else {
      kind = "VaultDynamicSecret";
      const { mount, rest } = splitMount(source.path);
      Object.assign(spec, { mount, path: rest });
      if (source.type === "read") {
        Object.assign(spec, { requestHTTPMethod: "GET", refreshAfter: goDuration(cx.intervalMs) });
        cx.findings.push({ where, why: `source "${sourceName}" (a generic read) became a VaultDynamicSecret with refreshAfter; its mount is taken as the path's first segment ("${mount}")` });
      } else {
        const rp = renewalPercent(source.renewBefore);
        if (rp.percent !== undefined) spec.renewalPercent = rp.percent;
        if (rp.why) cx.findings.push({ where, why: rp.why });
        spec.revoke = true;
        leaseUsers.set(sourceName, (leaseUsers.get(sourceName) ?? 0) + 1);
        if (leaseUsers.get(sourceName) === 2) {
          cx.findings.push({ where, why: `lease source "${sourceName}" is used by several outputs: each VaultDynamicSecret gets its own lease (other credentials), where vault-render shares one`, instead: "one output per lease source, mounted where both consumers need it" });
        }
        if (!source.path.startsWith(`${mount}/`)) cx.findings.push({ where, why: `the lease path's mount is taken as its first segment ("${mount}")` });
      }
    }
    const hooks = hookRestarts(layout.raw, o.hooks ?? [], where, "vso");
    cx.findings.push(...hooks.findings, ...validateFinding(o, where));
    if (hooks.targets.length) spec.rolloutRestartTargets = hooks.targets;
    spec.destination = destination(name, { [secretKey(o.file)]: text });
    manifests.push({ object: { apiVersion: VSO_API, kind, metadata: meta(name, cx.namespace), spec }, comment: [`outputs[${i}]: ${o.file} (format ${o.format}${o.format === "env" ? `, dialect ${o.dialect ?? "portable"}` : ""})`], output: i });
  });
  return { manifests, skipped };
}
