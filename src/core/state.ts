/**
 * Persistent state in agent-only/ (0600): per output the keyed hash of what was written, the
 * source versions it rendered, when, and the last error; cached KV mount versions; the run
 * history. Hashes are HMAC-SHA256 under a random key kept beside the state, so the state holds
 * no guessable fingerprint of a short secret.
 */
import { createHmac, randomBytes } from "node:crypto";
import path from "node:path";
import { z } from "zod";
import { readPrivate, writePrivate } from "./writer.js";
import { ExitCode, VrError } from "./errors.js";

/**
 * A record read into an object without a prototype: an output, hook, lease or key named
 * "constructor" or "__proto__" is stored and found as itself (z.record drops "__proto__", and a
 * plain object answers "toString" with a function).
 */
function dict<T extends z.ZodType>(value: T) {
  return z.unknown().transform((input, ctx): Record<string, z.output<T>> => {
    const out = Object.create(null) as Record<string, z.output<T>>;
    if (input === null || typeof input !== "object" || Array.isArray(input)) {
      ctx.addIssue({ code: "custom", message: "expected an object" });
      return z.NEVER;
    }
    const rec = input as Record<string, unknown>;
    for (const k of Object.keys(rec)) {
      const r = value.safeParse(rec[k]);
      if (r.success) out[k] = r.data;
      else ctx.addIssue({ code: "custom", message: r.error.message, path: [k] });
    }
    return out;
  });
}

/** An empty record without a prototype. */
export function emptyDict<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

const errorRecord = z.object({ code: z.string(), message: z.string(), at: z.string() });

const outputState = z.object({
  hash: z.string(),
  size: z.number(),
  /** Per-key keyed hashes for env/json outputs (for a redacted plan/diff). */
  keys: dict(z.string()).optional(),
  sources: dict(z.object({ version: z.number().optional() })).default(emptyDict),
  writtenAt: z.string(),
  lastError: errorRecord.nullable().default(null),
});

const pkiState = z.object({
  serial: z.string(),
  notAfter: z.number(),
  notBefore: z.number(),
  requestHash: z.string(),
  issuedAt: z.string(),
  /** The issued leaf certificate and CA chain (PEM, public), to repair the set without a new issue. */
  cert: z.string().optional(),
  chain: z.string().optional(),
});

const leaseState = z.object({
  leaseId: z.string(),
  path: z.string(),
  issuedAt: z.number(),
  expiresAt: z.number(),
  duration: z.number(),
  renewable: z.boolean(),
  /** The token whose request created the lease (Vault revokes the lease with it): keyed hash, accessor, horizon. */
  tokenId: z.string().optional(),
  tokenAccessor: z.string().optional(),
  /** ms: when that token is gone at the latest as far as known (its max-TTL horizon, else its expiry); null = never */
  tokenExpiresAt: z.number().nullable().optional(),
});

/** The token vault-render holds, as last seen (token-horizon.ts). */
const tokenState = z.object({
  /** keyed hash of the token (batch tokens have no accessor) */
  id: z.string(),
  accessor: z.string(),
  issuedAt: z.number(),
  expiresAt: z.number().nullable(),
  /** seconds; 0 = not periodic (or not known yet) */
  period: z.number().default(0),
  /** ms; null = not known (or none: a periodic token) */
  maxExpiresAt: z.number().nullable().default(null),
  /** seconds: the AppRole's token max TTL as learned from a capped renewal or an explicit max TTL */
  maxTtl: z.number().nullable().default(null),
});

const pendingHook = z.object({ files: z.array(z.string()), since: z.string(), attempts: z.number().default(0), lastError: z.string().optional() });
const pendingRevoke = z.object({ leaseId: z.string(), source: z.string(), afterHooks: z.array(z.string()).default([]), since: z.string() });

const stateSchema = z.object({
  version: z.literal(1),
  outputs: dict(outputState).default(emptyDict),
  /** Failures of outputs that never had a good write. */
  failures: dict(errorRecord).default(emptyDict),
  mounts: dict(z.union([z.literal(1), z.literal(2)])).default(emptyDict),
  secretIdPlainHash: z.string().optional(),
  pki: dict(pkiState).default(emptyDict),
  leases: dict(leaseState).default(emptyDict),
  token: tokenState.optional(),
  pendingHooks: dict(pendingHook).default(emptyDict),
  pendingRevokes: z.array(pendingRevoke).default([]),
  lastRun: z.object({ at: z.string(), exit: z.number(), summary: z.string() }).optional(),
  lastSuccessAt: z.string().optional(),
});

export type State = z.infer<typeof stateSchema>;
export type OutputState = z.infer<typeof outputState>;
export type PkiState = z.infer<typeof pkiState>;
export type TokenState = z.infer<typeof tokenState>;

export function emptyState(): State {
  return { version: 1, outputs: emptyDict(), failures: emptyDict(), mounts: emptyDict(), pki: emptyDict(), leases: emptyDict(), pendingHooks: emptyDict(), pendingRevokes: [] };
}

export class StateStore {
  readonly file: string;
  readonly keyFile: string;
  private key: Buffer | undefined;

  constructor(agentDir: string) {
    this.file = path.join(agentDir, "state.json");
    this.keyFile = path.join(agentDir, "state.key");
  }

  async load(): Promise<State> {
    const buf = await readPrivate(this.file);
    if (!buf) return emptyState();
    try {
      return stateSchema.parse(JSON.parse(buf.toString("utf8")));
    } catch {
      // A corrupt state only costs work (everything is compared byte-for-byte anyway), never safety.
      return emptyState();
    }
  }

  async save(state: State): Promise<void> {
    await writePrivate(this.file, JSON.stringify(state, null, 1) + "\n");
  }

  /**
   * The HMAC key, created on first use. With `create: false` (check, dry runs: they write nothing)
   * a missing key is replaced by a throwaway one held in memory: nothing recorded can match it
   * anyway, since no state was ever written under a key.
   */
  async hmacKey(opts: { create?: boolean } = {}): Promise<Buffer> {
    if (this.key) return this.key;
    const existing = await readPrivate(this.keyFile);
    if (existing && existing.length >= 32) {
      this.key = existing;
      return existing;
    }
    const k = randomBytes(32);
    if (opts.create === false) {
      this.key = k;
      return k;
    }
    try {
      await writePrivate(this.keyFile, k);
    } catch (e) {
      throw new VrError("STATE", `cannot create ${this.keyFile}: ${(e as NodeJS.ErrnoException).code ?? "error"}; nothing was changed`, {
        hint: "agent-only/ must be a writable directory with free space for vault-render",
        exit: ExitCode.Environment,
        cause: e,
      });
    }
    this.key = k;
    return k;
  }
}

export function keyedHash(key: Buffer, data: Uint8Array | string): string {
  return createHmac("sha256", key).update(data).digest("hex");
}
