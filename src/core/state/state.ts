/**
 * Persistent state in agent-only/ (0600): per output the keyed hash of what was written, the
 * source versions it rendered, when, and the last error; cached KV mount versions; the run
 * history. Hashes are HMAC-SHA256 under a random key kept beside the state, so the state holds
 * no guessable fingerprint of a short secret.
 */
import { count } from "../support/plural.js";
import { createHmac, randomBytes } from "node:crypto";
import path from "node:path";
import * as z from "../support/zod.js";
import { leaseIdsIn, tolerantJsonParse } from "./salvage.js";
import { readPrivate, writePrivate } from "../fs/writer.js";
import { keepAside } from "../fs/private.js";
import { ExitCode, VrError } from "../support/errors.js";

/**
 * A record read into an object without a prototype: an output, hook, lease or key named
 * "constructor" or "__proto__" is stored and found as itself (z.record drops "__proto__", and a
 * plain object answers "toString" with a function).
 */
function dict<T extends z.ZodMiniType>(value: T) {
  return z.pipe(
    z.unknown(),
    z.transform((input: unknown, ctx): Record<string, z.output<T>> => {
      const out = Object.create(null) as Record<string, z.output<T>>;
      if (input === null || typeof input !== "object" || Array.isArray(input)) {
        ctx.issues.push({ code: "custom", message: "expected an object", input });
        return z.NEVER;
      }
      const rec = input as Record<string, unknown>;
      for (const k of Object.keys(rec)) {
        const r = value.safeParse(rec[k]);
        if (r.success) out[k] = r.data;
        else ctx.issues.push({ code: "custom", message: r.error.message, path: [k], input: rec[k] });
      }
      return out;
    }),
  );
}

/** An empty record without a prototype. */
function emptyDict<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

const errorRecord = z.object({ code: z.string(), message: z.string(), at: z.string() });

const outputState = z.object({
  hash: z.string(),
  size: z.number(),
  /** Per-key keyed hashes for env/json outputs (for a redacted plan/diff). */
  keys: z.optional(dict(z.string())),
  sources: z._default(dict(z.object({ version: z.optional(z.number()) })), emptyDict),
  writtenAt: z.string(),
  lastError: z._default(z.nullable(errorRecord), null),
});

const pkiState = z.object({
  serial: z.string(),
  notAfter: z.number(),
  notBefore: z.number(),
  requestHash: z.string(),
  issuedAt: z.string(),
  /** The issued leaf certificate and CA chain (PEM, public), to repair the set without a new issue. */
  cert: z.optional(z.string()),
  chain: z.optional(z.string()),
});

const leaseState = z.object({
  leaseId: z.string(),
  path: z.string(),
  issuedAt: z.number(),
  expiresAt: z.number(),
  duration: z.number(),
  renewable: z.boolean(),
  /** The token whose request created the lease (Vault revokes the lease with it): keyed hash, accessor, horizon. */
  tokenId: z.optional(z.string()),
  tokenAccessor: z.optional(z.string()),
  /** ms: when that token is gone at the latest as far as known (its max-TTL horizon, else its expiry); null = never */
  tokenExpiresAt: z.optional(z.nullable(z.number())),
});

/** The token vault-render holds, as last seen (token-horizon.ts). */
const tokenState = z.object({
  /** keyed hash of the token (batch tokens have no accessor) */
  id: z.string(),
  accessor: z.string(),
  issuedAt: z.number(),
  expiresAt: z.nullable(z.number()),
  /** seconds; 0 = not periodic (or not known yet) */
  period: z._default(z.number(), 0),
  /** ms; null = not known (or none: a periodic token) */
  maxExpiresAt: z._default(z.nullable(z.number()), null),
  /** seconds: the AppRole's token max TTL as learned from a capped renewal or an explicit max TTL */
  maxTtl: z._default(z.nullable(z.number()), null),
});

const pendingHook = z.object({ files: z.array(z.string()), since: z.string(), attempts: z._default(z.number(), 0), lastError: z.optional(z.string()) });
const pendingRevoke = z.object({ leaseId: z.string(), source: z.string(), afterHooks: z._default(z.array(z.string()), []), since: z.string() });

const mountVersion = z.union([z.literal(1), z.literal(2)]);
const lastRun = z.object({ at: z.string(), exit: z.number(), summary: z.string() });

const stateSchema = z.object({
  version: z.literal(1),
  outputs: z._default(dict(outputState), emptyDict),
  /** Failures of outputs that never had a good write. */
  failures: z._default(dict(errorRecord), emptyDict),
  mounts: z._default(dict(mountVersion), emptyDict),
  secretIdPlainHash: z.optional(z.string()),
  pki: z._default(dict(pkiState), emptyDict),
  leases: z._default(dict(leaseState), emptyDict),
  token: z.optional(tokenState),
  pendingHooks: z._default(dict(pendingHook), emptyDict),
  pendingRevokes: z._default(z.array(pendingRevoke), []),
  lastRun: z.optional(lastRun),
  lastSuccessAt: z.optional(z.string()),
});

export type State = z.infer<typeof stateSchema>;
export type OutputState = z.infer<typeof outputState>;
export type PkiState = z.infer<typeof pkiState>;
export type TokenState = z.infer<typeof tokenState>;

export function emptyState(): State {
  return { version: 1, outputs: emptyDict(), failures: emptyDict(), mounts: emptyDict(), pki: emptyDict(), leases: emptyDict(), pendingHooks: emptyDict(), pendingRevokes: [] };
}

export interface LoadOptions {
  /** Told when the state file had to be salvaged. */
  warn?: (message: string) => void;
  /** Rename a damaged state file to state.json.corrupt-<time> (only runs that write state). */
  keepAside?: boolean;
  now?: () => number;
}

/** Every record of a damaged state document that still validates on its own. */
function salvageState(doc: unknown): State {
  const state = emptyState();
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) return state;
  const d = doc as Record<string, unknown>;
  const take = <T>(section: unknown, schema: z.ZodMiniType<T>, into: Record<string, T>) => {
    if (section === null || typeof section !== "object" || Array.isArray(section)) return;
    const rec = section as Record<string, unknown>;
    for (const k of Object.keys(rec)) {
      const r = schema.safeParse(rec[k]);
      if (r.success) into[k] = r.data;
    }
  };
  take(d.outputs, outputState, state.outputs);
  take(d.failures, errorRecord, state.failures);
  take(d.mounts, mountVersion, state.mounts);
  take(d.pki, pkiState, state.pki);
  take(d.leases, leaseState, state.leases);
  take(d.pendingHooks, pendingHook, state.pendingHooks);
  if (Array.isArray(d.pendingRevokes)) {
    for (const r of d.pendingRevokes) {
      const p = pendingRevoke.safeParse(r);
      if (p.success) state.pendingRevokes.push(p.data);
    }
  }
  if (typeof d.secretIdPlainHash === "string") state.secretIdPlainHash = d.secretIdPlainHash;
  const last = lastRun.safeParse(d.lastRun);
  if (last.success) state.lastRun = last.data;
  if (typeof d.lastSuccessAt === "string") state.lastSuccessAt = d.lastSuccessAt;
  return state;
}

export class StateStore {
  readonly file: string;
  readonly keyFile: string;
  private key: Buffer | undefined;

  constructor(agentDir: string) {
    this.file = path.join(agentDir, "state.json");
    this.keyFile = path.join(agentDir, "state.key");
  }

  /**
   * The state. One that does not parse (or validate) is not dropped: every record that still
   * validates is recovered, the file is kept aside as `state.json.corrupt-<time>` (0600) when
   * `keepAside` (runs that write; check and dry runs leave it in place), and `warn` names it and
   * every lease id that could not be recovered, so the operator can revoke those leases.
   */
  async load(opts: LoadOptions = {}): Promise<State> {
    const buf = await readPrivate(this.file);
    if (!buf) return emptyState();
    const text = buf.toString("utf8");
    let doc: unknown;
    let problem: string;
    try {
      doc = JSON.parse(text);
      // "{}" is how an operator resets the state on purpose: nothing to keep or recover.
      if (doc !== null && typeof doc === "object" && !Array.isArray(doc) && Object.keys(doc).length === 0) return emptyState();
      const parsed = stateSchema.safeParse(doc);
      if (parsed.success) return parsed.data;
      problem = `invalid at ${parsed.error.issues[0]?.path.join(".") || "the top"}`;
    } catch {
      doc = tolerantJsonParse(text);
      problem = "not valid JSON (truncated or damaged)";
    }
    const state = salvageState(doc);
    const recovered = new Set([...Object.values(state.leases).map((l) => l.leaseId), ...state.pendingRevokes.map((r) => r.leaseId)]);
    const lost = leaseIdsIn(text).filter((id) => !recovered.has(id));
    let where = `${this.file} (left in place; the next sync keeps it aside)`;
    if (opts.keepAside) {
      const kept = `${this.file}.corrupt-${new Date((opts.now ?? Date.now)()).toISOString().replace(/[:.]/g, "-")}`;
      try {
        await keepAside(this.file, kept);
        where = `${this.file}; kept it as ${kept}`;
      } catch (e) {
        where = `${this.file} (could not keep it aside: ${(e as NodeJS.ErrnoException).code ?? "error"})`;
      }
    }
    const counts = [
      count(Object.keys(state.outputs).length, "output"),
      count(Object.keys(state.leases).length, "lease"),
      count(Object.keys(state.pendingHooks).length, "pending hook"),
      count(state.pendingRevokes.length, "pending revoke"),
    ].join(", ");
    opts.warn?.(
      `the state file is ${problem}: ${where}; recovered ${counts}` +
        (lost.length ? `; leases that could not be recovered (revoke them: vault lease revoke <id>): ${lost.join(", ")}` : ""),
    );
    return state;
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
