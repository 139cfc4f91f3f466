/**
 * One zod schema per command for commander's raw options (the global ones included), so a command
 * hands its core a typed, validated object instead of a hand-typed cast; durations come out in ms.
 *
 * The schemas live here, not in each command file, because of start-up cost (src/cli.ts,
 * docs/benchmarks.md): the command files are in the entry chunk, which `--help` loads and which
 * must not load zod. Each action imports this module lazily, beside its core module.
 */
import * as z from "../core/support/zod.js";
import { parseDurationFlag } from "../core/support/duration.js";
import type { DurationFlagOptions } from "../core/support/duration.js";
import { ExitCode, VrError } from "../core/support/errors.js";

/** A boolean flag commander leaves undefined when absent. */
const flag = z._default(z.boolean(), false);

/** A duration flag's text → ms, refused with the flag's own one-line message (parseDurationFlag). */
function duration(name: string, opts: DurationFlagOptions = {}) {
  return z.pipe(
    z.string(),
    z.transform((text: string, ctx) => {
      try {
        return parseDurationFlag(name, text, opts);
      } catch (e) {
        ctx.issues.push({ code: "custom", message: e instanceof Error ? e.message : String(e), input: text });
        return z.NEVER;
      }
    }),
  );
}

const globalShape = {
  layout: z.string(),
  verbose: flag,
  debug: flag,
  logFormat: z.optional(z.enum(["pretty", "json"])),
};
/** The options every command gets (and all that `schema` takes). */
export const globalOptions = z.object(globalShape);

export const syncOptions = z.object({
  ...globalShape,
  dryRun: flag,
  hooks: z.boolean(),
  runHooks: flag,
  lockTimeout: duration("--lock-timeout"),
  json: flag,
  metricsFile: z.optional(z.string()),
});

export const rotateOptions = z.object({
  ...globalShape,
  targets: z.array(z.string()),
  secretId: flag,
  dryRun: flag,
  hooks: z.boolean(),
  lockTimeout: duration("--lock-timeout"),
});

const checkExample = { example: "7d, 12h, 30m" };
export const checkOptions = z.object({
  ...globalShape,
  offline: flag,
  json: flag,
  minValidity: duration("--min-validity", checkExample),
  minTokenTtl: duration("--min-token-ttl", checkExample),
  maxAge: z.optional(duration("--max-age", checkExample)),
});

export const statusOptions = z.object({ ...globalShape, json: flag });

export const policyOptions = z.object({ ...globalShape, json: flag });

/** In the order today's checks run: every duration is checked before anything starts. */
export const watchOptions = z.object({
  ...globalShape,
  lockTimeout: duration("--lock-timeout"),
  interval: duration("--interval", { positive: true }),
  maxBackoff: duration("--max-backoff", { positive: true }),
  healInterval: duration("--heal-interval", { positive: true }),
  debounce: duration("--debounce"),
  hooks: z.boolean(),
  metricsFile: z.optional(z.string()),
});

/**
 * Raw options → the command's typed options, or a usage error (exit 2) with one line: the first
 * refused option's own message (a duration names its flag), else `--flag: zod's message`.
 */
export function parseOptions<S extends z.ZodMiniType>(schema: S, raw: unknown): z.output<S> {
  const r = z.safeParse(schema, raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  if (issue === undefined) throw new VrError("USAGE", "invalid options", { exit: ExitCode.Usage });
  if (issue.code === "custom") throw new VrError("USAGE", issue.message, { exit: ExitCode.Usage });
  const name = issue.path.map((p) => `--${String(p).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(" ") || "options";
  throw new VrError("USAGE", `${name}: ${issue.message}`, { exit: ExitCode.Usage });
}

export const initOptions = z.object({
  ...globalShape,
  json: flag,
  role: z.optional(z.string()),
  mount: z.optional(z.string()),
  kvMount: z.optional(z.string()),
  vaultAddr: z.optional(z.string()),
  roleIdFile: z.optional(z.string()),
  secretIdFile: z.optional(z.string()),
  plainSecretId: flag,
});

export const completionOptions = z.object({ ...globalShape, shell: z.enum(["bash", "zsh", "fish"]) });

export const importOptions = z.object({
  ...globalShape,
  out: z.string().check(z.minLength(1)),
  from: z.optional(z.enum(["agent", "consul-template"])),
  partial: flag,
  json: flag,
  force: flag,
});

export const exportOptions = z.object({
  ...globalShape,
  to: z.enum(["vso", "eso"]),
  namespace: z.optional(z.string().check(z.regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, "a Kubernetes namespace (lowercase letters, digits and -, at most 63)"))),
  interval: duration("--interval", { positive: true }),
  partial: flag,
  out: z.optional(z.string()),
});
