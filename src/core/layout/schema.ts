/**
 * The layout file (version 1): the product's main interface. One zod schema is the single source
 * of truth; the JSON Schema in schema/vault-layout.schema.json is generated from it.
 */
import { z } from "zod";

const duration = z
  .string()
  .regex(/^(\d+(\.\d+)?(ms|s|m|h|d))+$|^\d+$/, 'a duration such as "30s", "5m", "1h30m" or seconds as "90"')
  .describe('A duration: "500ms", "30s", "5m", "1h30m", "2d", or whole seconds as "90".');

const sourceName = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, "a source name of letters, digits, _ and - (at most 64)");

/** `"<source>.<key>"`: the source name, a dot, then the key inside that secret (which may contain dots). */
const keyRef = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}\.[^\0]+$/, 'a reference "<source>.<key>", e.g. "db.password"')
  .describe('A reference to one key of one source: "<source>.<key>", e.g. "db.password".');

const vaultPath = z
  .string()
  .min(1)
  .max(512)
  .regex(/^[^/\0\s?#][^\0\s?#]*$/, "a Vault path without leading /, spaces, ? or #")
  .refine((p) => !p.split("/").some((s) => s === ".." || s === "."), "a Vault path without . or .. segments");

const mountPath = vaultPath.refine((p) => !p.endsWith("/"), "a mount path without a trailing /");

export const kvSourceSchema = z
  .strictObject({
    type: z.literal("kv"),
    mount: mountPath.describe('The KV mount, e.g. "secret".'),
    path: vaultPath.describe('The secret path inside the mount, e.g. "apps/web" (no "data/").'),
    kvVersion: z
      .union([z.literal(1), z.literal(2)])
      .optional()
      .describe("KV engine version. Omit to detect it once through sys/internal/ui/mounts (cached in state)."),
    version: z
      .number()
      .int()
      .positive()
      .optional()
      .describe("KV v2 only: pin this version instead of the latest."),
    generate: z
      .strictObject({
        key: z.string().min(1).describe("The key that `vault-render rotate` replaces with a new random value."),
        length: z.number().int().min(8).max(512).default(32).describe("Length in characters (default 32)."),
        alphabet: z
          .union([z.enum(["alnum", "hex", "base64url", "ascii-printable"]), z.string().min(2).max(256)])
          .default("alnum")
          .describe('"alnum" (default), "hex", "base64url", "ascii-printable", or the literal characters to draw from.'),
      })
      .optional()
      .describe("KV v2 only: lets `vault-render rotate` write a new random value for one key (check-and-set). Without it a KV secret is never rotated."),
  })
  .describe("A KV v1 or v2 secret.");

const durationOrFraction = z
  .union([duration, z.number().gt(0).lt(1)])
  .describe('A duration ("240h") or a fraction of the lifetime (0.33).');

export const leaseSourceSchema = z
  .strictObject({
    type: z.literal("lease"),
    path: vaultPath.describe('A path whose read returns a lease, e.g. "database/creds/app".'),
    renewBefore: durationOrFraction
      .optional()
      .describe("Renew (or, when not renewable or near its max TTL, replace) the lease when less than this is left. Default 0.5 of its duration."),
  })
  .describe("Leased dynamic credentials: fetched once, then renewed or replaced on their own lifecycle, never on every run.");

export const readSourceSchema = z
  .strictObject({
    type: z.literal("read"),
    path: vaultPath.describe('Any Vault path whose read returns `data`, e.g. "cubbyhole/app".'),
  })
  .describe("A generic read of any Vault path that returns a flat `data` object.");

export const sourceSchema = z.discriminatedUnion("type", [kvSourceSchema, readSourceSchema, leaseSourceSchema]);

const outputFile = z
  .string()
  .min(1)
  .max(1024)
  .describe('The file, relative to public/ (subdirectories allowed), e.g. "web/app.env".');

const keysMap = z
  .record(z.string().min(1).max(256), keyRef)
  .describe('Chosen keys, renamed: { "OUTPUT_NAME": "<source>.<key>" }. Written in this order.');

const fromSpec = z.union([
  sourceName,
  z.strictObject({ source: sourceName, prefix: z.string().max(128).optional() }),
]);
const fromList = z
  .array(fromSpec)
  .min(1)
  .describe('All keys of these sources, sorted by name: ["app"] or [{ "source": "app", "prefix": "APP_" }].');

const hookRefs = z
  .array(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "a hook name"))
  .optional()
  .describe('Hooks (names from "hooks") to run once after this output changes.');

const common = {
  file: outputFile,
  hooks: hookRefs,
  allowEmpty: z
    .boolean()
    .optional()
    .describe("env/json: an output that renders no keys (e.g. a secret emptied in Vault) is written as an empty file/object instead of failing. Default false."),
};

export const envOutputSchema = z
  .strictObject({
    ...common,
    format: z.literal("env"),
    dialect: z
      .enum(["portable", "compose", "dotenv", "python-dotenv", "posix", "sh", "systemd"])
      .optional()
      .describe('How values are quoted. "portable" (default) is read identically by Compose, npm dotenv, python-dotenv, sh and systemd, and refuses values none can carry.'),
    keys: keysMap.optional(),
    from: fromList.optional(),
  })
  .refine((o) => o.keys !== undefined || o.from !== undefined, {
    message: 'an env output needs "keys", "from" or both',
    path: ["keys"],
  })
  .describe("A .env file of KEY='value' lines.");

export const rawOutputSchema = z
  .strictObject({
    ...common,
    format: z.literal("raw"),
    value: keyRef.describe('The one key whose value is the whole file, e.g. "db.password".'),
    decode: z.enum(["none", "base64"]).optional().describe('"base64" writes the decoded bytes (binary files).'),
    newline: z.boolean().optional().describe("Append a final newline (default false: the exact value)."),
  })
  .describe("One value as the whole file (a password file, a key).");

export const jsonOutputSchema = z
  .strictObject({
    ...common,
    format: z.literal("json"),
    keys: keysMap.optional(),
    from: fromList.optional(),
  })
  .refine((o) => o.keys !== undefined || o.from !== undefined, {
    message: 'a json output needs "keys", "from" or both',
    path: ["keys"],
  })
  .describe("A JSON object (2-space indent, final newline, stable key order).");

export const templateOutputSchema = z
  .strictObject({
    ...common,
    format: z.literal("template"),
    template: z
      .string()
      .min(1)
      .optional()
      .describe("A template file, relative to the layout file's directory."),
    inline: z.string().optional().describe("The template text itself."),
  })
  .refine((o) => (o.template === undefined) !== (o.inline === undefined), {
    message: 'a template output needs exactly one of "template" or "inline"',
    path: ["template"],
  })
  .describe('Text with {{ source.key }} references; helpers: {{ source.key | json }}, {{ source.key | base64 }}, {{ source.key | base64decode }}. A missing key is an error. No code execution.');

const pemFileName = z.string().min(1).max(255).nullable();

export const pkiOutputSchema = z
  .strictObject({
    format: z.literal("pki"),
    dir: outputFile.describe('Directory of the certificate set, relative to public/, e.g. "certs/nextcloud".'),
    hooks: hookRefs,
    mount: mountPath.describe('The PKI mount, e.g. "pki_int".'),
    role: z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, "a PKI role name"),
    commonName: z.string().min(1).max(255),
    altNames: z.array(z.string().min(1).max(255)).optional().describe("DNS subject alternative names."),
    ipSans: z.array(z.string().min(1).max(64)).optional().describe("IP subject alternative names."),
    ttl: duration.optional().describe("Requested lifetime (the role caps it)."),
    privateKeyFormat: z.enum(["der", "pkcs8"]).optional().describe('"pkcs8" writes BEGIN PRIVATE KEY; default is the key type\'s own PEM.'),
    renewBefore: durationOrFraction
      .optional()
      .describe("Re-issue when less than this is left (default 0.33 of the certificate's lifetime)."),
    files: z
      .strictObject({
        cert: pemFileName.optional().describe('Default "cert.pem" (the leaf only).'),
        key: pemFileName.optional().describe('Default "key.pem".'),
        ca: pemFileName.optional().describe('Default "ca.pem" (issuing CA and its chain).'),
        fullchain: pemFileName.optional().describe('Default "fullchain.pem" (leaf + chain, what nginx and Traefik want).'),
      })
      .optional()
      .describe("File names in the set; null leaves one out."),
  })
  .describe("A certificate issued from a PKI role, written as one set (cert, key, CA chain, full chain). Re-issued only when due.");

export const outputSchema = z.discriminatedUnion("format", [
  envOutputSchema,
  rawOutputSchema,
  jsonOutputSchema,
  templateOutputSchema,
  pkiOutputSchema,
]);

export const hookSchema = z
  .strictObject({
    command: z
      .union([z.array(z.string().min(1)).min(1), z.string().min(1)])
      .describe('argv, e.g. ["docker", "restart", "nextcloud"]; a string only with "shell": true.'),
    shell: z.boolean().optional().describe("Run `command` (a string) through /bin/sh -c. Default false."),
    timeout: duration.optional().describe('Default "60s"; then SIGTERM, and SIGKILL 5 s later.'),
  })
  .describe("A command run once per sync after the outputs that name it changed (VAULT_RENDER_CHANGED_FILES lists them).");

export const layoutSchema = z
  .strictObject({
    $schema: z.string().optional(),
    version: z.literal(1).describe("Layout format version. Always 1."),
    vault: z
      .strictObject({
        address: z
          .url({ protocol: /^https?$/ })
          .optional()
          .describe("Vault address (VAULT_ADDR overrides). Default https://127.0.0.1:8200."),
        namespace: z.string().optional().describe("Enterprise namespace (VAULT_NAMESPACE overrides)."),
        caCert: z.string().optional().describe("PEM CA bundle file (VAULT_CACERT overrides). Relative to the layout."),
        tlsServerName: z.string().optional().describe("TLS server name for SNI and verification (VAULT_TLS_SERVER_NAME overrides)."),
        skipVerify: z.boolean().optional().describe("Disable TLS verification (VAULT_SKIP_VERIFY overrides). Logs a warning on every run."),
        timeout: duration.optional().describe('Per-request timeout, default "10s".'),
        retries: z.number().int().min(0).max(10).optional().describe("Retries on 429, 5xx (not 501) and connection errors; default 2."),
        concurrency: z.number().int().min(1).max(64).optional().describe("Parallel reads, default 8."),
      })
      .default({}),
    auth: z.strictObject({
      approle: z.strictObject({
        mount: mountPath.optional().describe('AppRole auth mount, default "approle".'),
        roleIdFile: z.string().min(1).describe("File holding the role_id, relative to agent-only/."),
        secretIdFile: z.string().min(1).describe("File holding the secret_id, relative to agent-only/."),
        secretIdWrapped: z
          .boolean()
          .optional()
          .describe("The secret_id file holds a response-wrapping token: unwrap it (checking its creation path) and keep the unwrapped secret_id in its place."),
        roleName: z
          .string()
          .regex(/^[A-Za-z0-9_.-]{1,128}$/, "an AppRole role name")
          .optional()
          .describe("The role's name; needed by `vault-render rotate --secret-id`."),
        revokeOldSecretId: z
          .boolean()
          .optional()
          .describe("After `rotate --secret-id` proved the new secret_id, destroy the old one (by accessor). Default false: it expires on its own TTL."),
        removeSecretIdFile: z
          .boolean()
          .optional()
          .describe("Delete the secret_id file after a successful login. Default false: a cron tool must log in again when the token's max TTL ends."),
      }),
    }),
    paths: z
      .strictObject({
        public: z.string().min(1).describe('Directory mounted into containers (files 0644, directories 0755). Default "public".'),
        agentOnly: z.string().min(1).describe('Directory for token, approle files, lock and state (0700). Default "agent-only".'),
      })
      .partial()
      .default({}),
    sources: z.record(sourceName, sourceSchema).describe("Named Vault secrets the outputs draw from."),
    hooks: z.record(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "a hook name"), hookSchema).optional().describe("Named commands outputs can trigger."),
    outputs: z.array(outputSchema).describe("Files to render into public/."),
  })
  .describe("vault-render layout: which Vault secrets become which files in public/.");

export type Layout = z.infer<typeof layoutSchema>;
export type SourceSpec = z.infer<typeof sourceSchema>;
export type OutputSpec = z.infer<typeof outputSchema>;
export type PkiOutput = z.infer<typeof pkiOutputSchema>;
export type FileOutput = Exclude<OutputSpec, PkiOutput>;
export type HookSpec = z.infer<typeof hookSchema>;

export function layoutJsonSchema(): unknown {
  return z.toJSONSchema(layoutSchema, { io: "input", target: "draft-2020-12" });
}
