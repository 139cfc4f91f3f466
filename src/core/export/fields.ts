/**
 * The project's own description of every field `export` emits, per kind: one strict zod schema
 * each (an unknown field, a wrong type or a value outside what the operators accept fails). The
 * export tests parse every exported manifest back from YAML and check it here; scripts/validate-crds.js
 * checks the same manifests against the operators' published CRD schemas when they are at hand.
 */
import * as z from "../support/zod.js";

/** A Kubernetes object name (DNS-1123 label, as export makes them). */
const name = z.string().check(z.regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/));
/** A Secret data key. */
const dataKey = z.string().check(z.regex(/^[-._a-zA-Z0-9]+$/));
/** VSO's duration fields: ^([0-9]+(\.[0-9]+)?(s|m|h))$. */
const vsoDuration = z.string().check(z.regex(/^([0-9]+(\.[0-9]+)?(s|m|h))$/));
const text = z.string().check(z.minLength(1));

function object<K extends string, S extends z.ZodMiniType>(apiVersion: string, kind: K, spec: S) {
  return z.strictObject({
    apiVersion: z.literal(apiVersion),
    kind: z.literal(kind),
    metadata: z.strictObject({ name, namespace: z.optional(name) }),
    spec,
  });
}

const VSO = "secrets.hashicorp.com/v1beta1";
const restartTargets = z.optional(z.array(z.strictObject({ kind: z.enum(["Deployment", "DaemonSet", "StatefulSet", "argo.Rollout"]), name })).check(z.minLength(1)));
const vsoDestination = z.strictObject({
  name,
  create: z.literal(true),
  transformation: z.strictObject({
    excludeRaw: z.literal(true),
    excludes: z.tuple([z.literal(".*")]),
    templates: z.record(dataKey, z.strictObject({ text })),
  }),
});

const vaultConnection = object(
  VSO,
  "VaultConnection",
  z.strictObject({ address: z.url({ protocol: /^https?$/ }), skipTLSVerify: z.boolean(), caCertSecretRef: z.optional(name), tlsServerName: z.optional(text) }),
);
const vaultAuth = object(
  VSO,
  "VaultAuth",
  z.strictObject({
    vaultConnectionRef: name,
    method: z.literal("appRole"),
    mount: text,
    namespace: z.optional(text),
    appRole: z.strictObject({ roleId: text, secretRef: name }),
  }),
);
const vaultStaticSecret = object(
  VSO,
  "VaultStaticSecret",
  z.strictObject({
    vaultAuthRef: name,
    type: z.enum(["kv-v1", "kv-v2"]),
    mount: text,
    path: text,
    version: z.optional(z.number().check(z.int(), z.positive())),
    refreshAfter: vsoDuration,
    rolloutRestartTargets: restartTargets,
    destination: vsoDestination,
  }),
);
const vaultDynamicSecret = object(
  VSO,
  "VaultDynamicSecret",
  z.strictObject({
    vaultAuthRef: name,
    mount: text,
    path: text,
    requestHTTPMethod: z.optional(z.literal("GET")),
    refreshAfter: z.optional(vsoDuration),
    renewalPercent: z.optional(z.number().check(z.int(), z.gte(0), z.lte(90))),
    revoke: z.optional(z.literal(true)),
    rolloutRestartTargets: restartTargets,
    destination: vsoDestination,
  }),
);
const vaultPkiSecret = object(
  VSO,
  "VaultPKISecret",
  z.strictObject({
    vaultAuthRef: name,
    mount: text,
    role: text,
    commonName: text,
    altNames: z.optional(z.array(text)),
    ipSans: z.optional(z.array(text)),
    ttl: z.optional(z.string().check(z.regex(/^([0-9]+(\.[0-9]+)?(s|m|h|d))$/))),
    privateKeyFormat: z.optional(z.enum(["der", "pkcs8"])),
    format: z.literal("pem"),
    expiryOffset: z.optional(vsoDuration),
    rolloutRestartTargets: restartTargets,
    destination: vsoDestination,
  }),
);

const ESO = "external-secrets.io/v1";
const GEN = "generators.external-secrets.io/v1alpha1";
const secretRef = z.strictObject({ name, key: dataKey });
const provider = {
  server: z.url({ protocol: /^https?$/ }),
  namespace: z.optional(text),
  caProvider: z.optional(z.strictObject({ type: z.literal("Secret"), name, key: dataKey })),
  auth: z.strictObject({ appRole: z.strictObject({ path: text, roleRef: secretRef, secretRef }) }),
};
const storeRef = z.strictObject({ storeRef: z.strictObject({ name, kind: z.literal("SecretStore") }) });
const generatorRef = z.strictObject({ generatorRef: z.strictObject({ apiVersion: z.literal(GEN), kind: z.literal("VaultDynamicSecret"), name }) });
const rewrite = z.optional(z.array(z.strictObject({ regexp: z.strictObject({ source: text, target: text }) })));
const goDurationText = z.string().check(z.regex(/^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/));

const secretStore = object(ESO, "SecretStore", z.strictObject({ provider: z.strictObject({ vault: z.strictObject({ ...provider, path: text, version: z.enum(["v1", "v2"]) }) }) }));
const generator = object(
  GEN,
  "VaultDynamicSecret",
  z.strictObject({
    path: z.string().check(z.regex(/^\/\S+$/)),
    method: z.enum(["GET", "POST"]),
    parameters: z.optional(z.record(z.string(), z.string())),
    resultType: z.literal("Data"),
    provider: z.strictObject(provider),
  }),
);
const externalSecret = object(
  ESO,
  "ExternalSecret",
  z.strictObject({
    refreshInterval: goDurationText,
    secretStoreRef: z.optional(z.strictObject({ name, kind: z.literal("SecretStore") })),
    target: z.strictObject({
      name,
      creationPolicy: z.literal("Owner"),
      template: z.strictObject({ engineVersion: z.literal("v2"), mergePolicy: z.literal("Replace"), data: z.record(dataKey, text) }),
    }),
    data: z.optional(
      z.array(
        z.strictObject({
          secretKey: dataKey,
          remoteRef: z.strictObject({ key: text, property: text, version: z.optional(z.string().check(z.regex(/^[0-9]+$/))) }),
          sourceRef: storeRef,
        }),
      ),
    ),
    dataFrom: z.optional(
      z.array(
        z.union([
          z.strictObject({ extract: z.strictObject({ key: text, version: z.optional(z.string().check(z.regex(/^[0-9]+$/))) }), sourceRef: storeRef, rewrite }),
          z.strictObject({ sourceRef: generatorRef, rewrite }),
        ]),
      ),
    ),
  }),
);

/** The schema of each emitted kind, by `apiVersion kind`. */
const EMITTED_KINDS: ReadonlyMap<string, z.ZodMiniType> = new Map<string, z.ZodMiniType>([
  [`${VSO} VaultConnection`, vaultConnection],
  [`${VSO} VaultAuth`, vaultAuth],
  [`${VSO} VaultStaticSecret`, vaultStaticSecret],
  [`${VSO} VaultDynamicSecret`, vaultDynamicSecret],
  [`${VSO} VaultPKISecret`, vaultPkiSecret],
  [`${ESO} SecretStore`, secretStore],
  [`${ESO} ExternalSecret`, externalSecret],
  [`${GEN} VaultDynamicSecret`, generator],
]);

/** Problems of one parsed manifest against the description of its kind (empty = fits). */
export function checkEmitted(doc: unknown): string[] {
  const d = doc as { apiVersion?: unknown; kind?: unknown };
  const schema = EMITTED_KINDS.get(`${String(d.apiVersion)} ${String(d.kind)}`);
  if (!schema) return [`${String(d.apiVersion)} ${String(d.kind)}: not a kind export emits`];
  const r = z.safeParse(schema, doc);
  return r.success ? [] : r.error.issues.map((i) => `${String(d.kind)} ${i.path.join(".")}: ${i.message}`);
}
