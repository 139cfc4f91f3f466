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
  })
  .describe("A KV v1 or v2 secret.");

export const readSourceSchema = z
  .strictObject({
    type: z.literal("read"),
    path: vaultPath.describe('Any Vault path whose read returns `data`, e.g. "cubbyhole/app".'),
  })
  .describe("A generic read of any Vault path that returns a flat `data` object.");

export const sourceSchema = z.discriminatedUnion("type", [kvSourceSchema, readSourceSchema]);

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

const common = {
  file: outputFile,
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

export const outputSchema = z.discriminatedUnion("format", [
  envOutputSchema,
  rawOutputSchema,
  jsonOutputSchema,
  templateOutputSchema,
]);

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
    outputs: z.array(outputSchema).describe("Files to render into public/."),
  })
  .describe("vault-render layout: which Vault secrets become which files in public/.");

export type Layout = z.infer<typeof layoutSchema>;
export type SourceSpec = z.infer<typeof sourceSchema>;
export type OutputSpec = z.infer<typeof outputSchema>;
export type EnvOutput = z.infer<typeof envOutputSchema>;
export type JsonOutput = z.infer<typeof jsonOutputSchema>;
export type RawOutput = z.infer<typeof rawOutputSchema>;
export type TemplateOutput = z.infer<typeof templateOutputSchema>;

export function layoutJsonSchema(): unknown {
  return z.toJSONSchema(layoutSchema, { io: "input", target: "draft-2020-12" });
}
