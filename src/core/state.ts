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
import { VrError } from "./errors.js";

const errorRecord = z.object({ code: z.string(), message: z.string(), at: z.string() });

const outputState = z.object({
  hash: z.string(),
  size: z.number(),
  /** Per-key keyed hashes for env/json outputs (for a redacted plan/diff). */
  keys: z.record(z.string(), z.string()).optional(),
  sources: z.record(z.string(), z.object({ version: z.number().optional() })).default({}),
  writtenAt: z.string(),
  lastError: errorRecord.nullable().default(null),
});

const pkiState = z.object({
  serial: z.string(),
  notAfter: z.number(),
  notBefore: z.number(),
  requestHash: z.string(),
  issuedAt: z.string(),
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
  outputs: z.record(z.string(), outputState).default({}),
  /** Failures of outputs that never had a good write. */
  failures: z.record(z.string(), errorRecord).default({}),
  mounts: z.record(z.string(), z.union([z.literal(1), z.literal(2)])).default({}),
  secretIdPlainHash: z.string().optional(),
  pki: z.record(z.string(), pkiState).default({}),
  leases: z.record(z.string(), leaseState).default({}),
  token: tokenState.optional(),
  pendingHooks: z.record(z.string(), pendingHook).default({}),
  pendingRevokes: z.array(pendingRevoke).default([]),
  lastRun: z.object({ at: z.string(), exit: z.number(), summary: z.string() }).optional(),
  lastSuccessAt: z.string().optional(),
});

export type State = z.infer<typeof stateSchema>;
export type OutputState = z.infer<typeof outputState>;
export type PkiState = z.infer<typeof pkiState>;
export type TokenState = z.infer<typeof tokenState>;

export function emptyState(): State {
  return { version: 1, outputs: {}, failures: {}, mounts: {}, pki: {}, leases: {}, pendingHooks: {}, pendingRevokes: [] };
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

  /** The HMAC key, created on first use. */
  async hmacKey(): Promise<Buffer> {
    if (this.key) return this.key;
    const existing = await readPrivate(this.keyFile);
    if (existing && existing.length >= 32) {
      this.key = existing;
      return existing;
    }
    const k = randomBytes(32);
    try {
      await writePrivate(this.keyFile, k);
    } catch (e) {
      throw new VrError("STATE", `cannot create ${this.keyFile}`, { cause: e });
    }
    this.key = k;
    return k;
  }
}

export function keyedHash(key: Buffer, data: Uint8Array | string): string {
  return createHmac("sha256", key).update(data).digest("hex");
}
