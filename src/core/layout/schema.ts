/**
 * The layout file (version 1): the product's main interface. One zod schema is the single source
 * of truth; the JSON Schema in schema/vault-layout.schema.json is generated from it.
 */
import * as z from "../support/zod.js";

/** A copy of `schema` carrying `description` (what classic zod's `.describe()` does). */
function describe<T extends z.ZodMiniType>(schema: T, description: string): T {
  const copy = schema.clone();
  z.globalRegistry.add(copy, { description });
  return copy;
}

const duration = describe(
  z
    .string({ error: (iss) => (iss.input === undefined ? undefined : 'must be a duration in quotes, such as "30s", "5m", "1h30m" or seconds as "90"') })
    .check(z.regex(/^(\d+(\.\d+)?(ms|s|m|h|d))+$|^\d+$/, 'a duration such as "30s", "5m", "1h30m" or seconds as "90"')),
  'A duration: "500ms", "30s", "5m", "1h30m", "2d", or whole seconds as "90".',
);

const sourceName = z.string().check(z.regex(/^[A-Za-z0-9_-]{1,64}$/, "a source name of letters, digits, _ and - (at most 64)"));

/** `"<source>.<key>"`: the source name, a dot, then the key inside that secret (which may contain dots). */
const keyRef = describe(
  z.string().check(z.regex(/^[A-Za-z0-9_-]{1,64}\.[^\0]+$/, 'a reference "<source>.<key>", e.g. "db.password"')),
  'A reference to one key of one source: "<source>.<key>", e.g. "db.password".',
);

const vaultPath = z
  .string()
  .check(
    z.minLength(1),
    z.maxLength(512),
    z.regex(/^[^/\0\s?#][^\0\s?#]*$/, "a Vault path without leading /, spaces, ? or #"),
    z.refine((p: string) => !p.split("/").some((s) => s === ".." || s === "."), "a Vault path without . or .. segments"),
  );

const mountPath = vaultPath.check(z.refine((p: string) => !p.endsWith("/"), "a mount path without a trailing /"));

const kvSourceSchema = describe(
  z.strictObject({
    type: z.literal("kv"),
    mount: describe(mountPath, 'The KV mount, e.g. "secret".'),
    path: describe(vaultPath, 'The secret path inside the mount, e.g. "apps/web" (no "data/").'),
    kvVersion: describe(
      z.optional(z.union([z.literal(1), z.literal(2)])),
      "KV engine version. Omit to detect it once through sys/internal/ui/mounts (cached in state).",
    ),
    version: describe(z.optional(z.number().check(z.int(), z.positive())), "KV v2 only: pin this version instead of the latest."),
    generate: describe(
      z.optional(
        z.strictObject({
          key: describe(z.string().check(z.minLength(1)), "The key that `vault-render rotate` replaces with a new random value."),
          length: describe(z._default(z.number().check(z.int(), z.gte(8), z.lte(512)), 32), "Length in characters (default 32)."),
          alphabet: describe(
            z._default(z.union([z.enum(["alnum", "hex", "base64url", "ascii-printable"]), z.string().check(z.minLength(2), z.maxLength(256))]), "alnum"),
            '"alnum" (default), "hex", "base64url", "ascii-printable", or the literal characters to draw from.',
          ),
        }),
      ),
      "KV v2 only: lets `vault-render rotate` write a new random value for one key (check-and-set). Without it a KV secret is never rotated.",
    ),
  }),
  "A KV v1 or v2 secret.",
);

const durationOrFraction = describe(
  z.union([duration, z.number().check(z.gt(0), z.lt(1))]),
  'A duration ("240h") or a fraction of the lifetime (0.33).',
);

const leaseSourceSchema = describe(
  z.strictObject({
    type: z.literal("lease"),
    path: describe(vaultPath, 'A path whose read returns a lease, e.g. "database/creds/app".'),
    renewBefore: describe(
      z.optional(durationOrFraction),
      "Renew (or, when not renewable or near its max TTL, replace) the lease when less than this is left. Default 0.5 of its duration.",
    ),
  }),
  "Leased dynamic credentials: fetched once, then renewed or replaced on their own lifecycle, never on every run.",
);

const readSourceSchema = describe(
  z.strictObject({
    type: z.literal("read"),
    path: describe(vaultPath, 'Any Vault path whose read returns `data`, e.g. "cubbyhole/app".'),
  }),
  "A generic read of any Vault path that returns a flat `data` object.",
);

export const sourceSchema = z.discriminatedUnion("type", [kvSourceSchema, readSourceSchema, leaseSourceSchema]);

const outputFile = describe(
  z.string().check(z.minLength(1), z.maxLength(1024)),
  'The file, relative to public/ (subdirectories allowed), e.g. "web/app.env".',
);

const keysMap = describe(
  z.record(z.string().check(z.minLength(1), z.maxLength(256)), keyRef),
  'Chosen keys, renamed: { "OUTPUT_NAME": "<source>.<key>" }. Written in this order.',
);

const fromSpec = z.union([sourceName, z.strictObject({ source: sourceName, prefix: z.optional(z.string().check(z.maxLength(128))) })]);
const fromList = describe(
  z.array(fromSpec).check(z.minLength(1)),
  'All keys of these sources, sorted by name: ["app"] or [{ "source": "app", "prefix": "APP_" }].',
);

const hookRefs = describe(
  z.optional(z.array(z.string().check(z.regex(/^[A-Za-z0-9_-]{1,64}$/, "a hook name")))),
  'Hooks (names from "hooks") to run once after this output changes.',
);

const common = {
  file: outputFile,
  hooks: hookRefs,
  allowEmpty: describe(
    z.optional(z.boolean()),
    "env/json: an output that renders no keys (e.g. a secret emptied in Vault) is written as an empty file/object instead of failing. Default false.",
  ),
};

/** An env or json output draws its keys from "keys", "from" or both. */
const needsKeysOrFrom = (what: string) =>
  z.refine<{ keys?: unknown; from?: unknown }>((o) => o.keys !== undefined || o.from !== undefined, {
    message: `${what} needs "keys", "from" or both`,
    path: ["keys"],
  });

const envOutputSchema = describe(
  z
    .strictObject({
      ...common,
      format: z.literal("env"),
      dialect: describe(
        z.optional(z.enum(["portable", "compose", "dotenv", "python-dotenv", "posix", "sh", "systemd", "verbatim"])),
        'How values are quoted. "portable" (default) is read identically by Compose, npm dotenv, python-dotenv, sh and systemd, and refuses values none can carry. "verbatim" writes KEY=value unquoted, exactly as a Vault Agent range template does (values with a line break, CR or NUL are refused).',
      ),
      keys: z.optional(keysMap),
      from: z.optional(fromList),
    })
    .check(needsKeysOrFrom("an env output")),
  "A .env file of KEY='value' lines.",
);

const rawOutputSchema = describe(
  z.strictObject({
    ...common,
    format: z.literal("raw"),
    value: describe(keyRef, 'The one key whose value is the whole file, e.g. "db.password".'),
    decode: describe(z.optional(z.enum(["none", "base64"])), '"base64" writes the decoded bytes (binary files).'),
    newline: describe(z.optional(z.boolean()), "Append a final newline (default false: the exact value)."),
  }),
  "One value as the whole file (a password file, a key).",
);

const jsonOutputSchema = describe(
  z
    .strictObject({
      ...common,
      format: z.literal("json"),
      keys: z.optional(keysMap),
      from: z.optional(fromList),
    })
    .check(needsKeysOrFrom("a json output")),
  "A JSON object (2-space indent, final newline, stable key order).",
);

const templateOutputSchema = describe(
  z
    .strictObject({
      ...common,
      format: z.literal("template"),
      template: describe(z.optional(z.string().check(z.minLength(1))), "A template file, relative to the layout file's directory."),
      inline: describe(z.optional(z.string()), "The template text itself."),
    })
    .check(
      z.refine((o: { template?: unknown; inline?: unknown }) => (o.template === undefined) !== (o.inline === undefined), {
        message: 'a template output needs exactly one of "template" or "inline"',
        path: ["template"],
      }),
    ),
  'Text with {{ source.key }} references; helpers: {{ source.key | json }}, {{ source.key | base64 }}, {{ source.key | base64decode }}. A missing key is an error. No code execution.',
);

const pemFileName = z.nullable(z.string().check(z.minLength(1), z.maxLength(255)));

const pkiOutputSchema = describe(
  z.strictObject({
    format: z.literal("pki"),
    dir: describe(outputFile, 'Directory of the certificate set, relative to public/, e.g. "certs/nextcloud".'),
    hooks: hookRefs,
    mount: describe(mountPath, 'The PKI mount, e.g. "pki_int".'),
    role: z.string().check(z.regex(/^[A-Za-z0-9_.-]{1,128}$/, "a PKI role name")),
    commonName: z.string().check(z.minLength(1), z.maxLength(255)),
    altNames: describe(z.optional(z.array(z.string().check(z.minLength(1), z.maxLength(255)))), "DNS subject alternative names."),
    ipSans: describe(z.optional(z.array(z.string().check(z.minLength(1), z.maxLength(64)))), "IP subject alternative names."),
    ttl: describe(z.optional(duration), "Requested lifetime (the role caps it)."),
    privateKeyFormat: describe(z.optional(z.enum(["der", "pkcs8"])), '"pkcs8" writes BEGIN PRIVATE KEY; default is the key type\'s own PEM.'),
    renewBefore: describe(z.optional(durationOrFraction), "Re-issue when less than this is left (default 0.33 of the certificate's lifetime)."),
    files: describe(
      z.optional(
        z.strictObject({
          cert: describe(z.optional(pemFileName), 'Default "cert.pem" (the leaf only).'),
          key: describe(z.optional(pemFileName), 'Default "key.pem".'),
          ca: describe(z.optional(pemFileName), 'Default "ca.pem" (issuing CA and its chain).'),
          fullchain: describe(z.optional(pemFileName), 'Default "fullchain.pem" (leaf + chain, what nginx and Traefik want).'),
        }),
      ),
      "File names in the set; null leaves one out.",
    ),
  }),
  "A certificate issued from a PKI role, written as one set (cert, key, CA chain, full chain). Re-issued only when due.",
);

export const outputSchema = z.discriminatedUnion("format", [envOutputSchema, rawOutputSchema, jsonOutputSchema, templateOutputSchema, pkiOutputSchema]);

export const hookSchema = describe(
  z.strictObject({
    command: describe(
      z.union([z.array(z.string().check(z.minLength(1))).check(z.minLength(1)), z.string().check(z.minLength(1))]),
      'argv, e.g. ["docker", "restart", "nextcloud"]; a string only with "shell": true.',
    ),
    shell: describe(z.optional(z.boolean()), "Run `command` (a string) through /bin/sh -c. Default false."),
    timeout: describe(z.optional(duration), 'Default "60s"; then SIGTERM, and SIGKILL 5 s later.'),
  }),
  "A command run once per sync after the outputs that name it changed (VAULT_RENDER_CHANGED_FILES lists them).",
);

export const layoutSchema = describe(
  z.strictObject({
    $schema: z.optional(z.string()),
    version: describe(z.literal(1), "Layout format version. Always 1."),
    vault: z._default(
      z.strictObject({
        address: describe(z.optional(z.url({ protocol: /^https?$/ })), "Vault address (VAULT_ADDR overrides). Default https://127.0.0.1:8200."),
        namespace: describe(z.optional(z.string()), "Enterprise namespace (VAULT_NAMESPACE overrides)."),
        caCert: describe(z.optional(z.string()), "PEM CA bundle file (VAULT_CACERT overrides). Relative to the layout."),
        tlsServerName: describe(z.optional(z.string()), "TLS server name for SNI and verification (VAULT_TLS_SERVER_NAME overrides)."),
        skipVerify: describe(z.optional(z.boolean()), "Disable TLS verification (VAULT_SKIP_VERIFY overrides). Logs a warning on every run."),
        timeout: describe(z.optional(duration), 'Per-request timeout, default "10s".'),
        retries: describe(z.optional(z.number().check(z.int(), z.gte(0), z.lte(10))), "Retries on 429, 5xx (not 501) and connection errors; default 2."),
        concurrency: describe(z.optional(z.number().check(z.int(), z.gte(1), z.lte(64))), "Parallel reads, default 8."),
      }),
      {},
    ),
    auth: z.strictObject({
      approle: z.strictObject({
        mount: describe(z.optional(mountPath), 'AppRole auth mount, default "approle".'),
        roleIdFile: describe(z.string().check(z.minLength(1)), "File holding the role_id, relative to agent-only/."),
        secretIdFile: describe(z.string().check(z.minLength(1)), "File holding the secret_id, relative to agent-only/."),
        secretIdWrapped: describe(
          z.optional(z.boolean()),
          "The secret_id file holds a response-wrapping token: unwrap it (checking its creation path) and keep the unwrapped secret_id in its place.",
        ),
        roleName: describe(
          z.optional(z.string().check(z.regex(/^[A-Za-z0-9_.-]{1,128}$/, "an AppRole role name"))),
          "The role's name; needed by `vault-render rotate --secret-id`.",
        ),
        revokeOldSecretId: describe(
          z.optional(z.boolean()),
          "After `rotate --secret-id` proved the new secret_id, destroy the old one (by accessor). Default false: it expires on its own TTL.",
        ),
        removeSecretIdFile: describe(
          z.optional(z.boolean()),
          "Delete the secret_id file after a successful login. Default false: a cron tool must log in again when the token's max TTL ends.",
        ),
      }),
    }),
    paths: z._default(
      z.partial(
        z.strictObject({
          public: describe(z.string().check(z.minLength(1)), 'Directory mounted into containers (files 0644, directories 0755). Default "public".'),
          agentOnly: describe(z.string().check(z.minLength(1)), 'Directory for token, approle files, lock and state (0700). Default "agent-only".'),
        }),
      ),
      {},
    ),
    sources: describe(z.record(sourceName, sourceSchema), "Named Vault secrets the outputs draw from."),
    hooks: describe(
      z.optional(z.record(z.string().check(z.regex(/^[A-Za-z0-9_-]{1,64}$/, "a hook name")), hookSchema)),
      "Named commands outputs can trigger.",
    ),
    outputs: describe(z.array(outputSchema), "Files to render into public/."),
  }),
  "vault-render layout: which Vault secrets become which files in public/.",
);

export type Layout = z.infer<typeof layoutSchema>;
export type SourceSpec = z.infer<typeof sourceSchema>;
export type OutputSpec = z.infer<typeof outputSchema>;
export type PkiOutput = z.infer<typeof pkiOutputSchema>;
export type FileOutput = Exclude<OutputSpec, PkiOutput>;
export type HookSpec = z.infer<typeof hookSchema>;

export function layoutJsonSchema(): unknown {
  return z.toJSONSchema(layoutSchema, { io: "input", target: "draft-2020-12" });
}
