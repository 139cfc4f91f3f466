/**
 * The fetch step: every source the outputs need, read once. Static sources (KV) are read
 * `vault.concurrency` at a time; leased credentials are kept, renewed or replaced by their own
 * lifecycle (vault/leases.ts), and a replaced lease is handed on to be revoked after its hooks.
 */
import type { SourceResults } from "../render/index.js";
import type { RunContext } from "../run/context.js";
import { relogin } from "../run/context.js";
import { mapLimit } from "../support/clock.js";
import { formatDuration } from "../support/duration.js";
import { DryRunPending, describeError } from "../support/errors.js";
import { VaultRequestError } from "../vault/client.js";
import type { SourceData, StaticSource } from "../vault/kv.js";
import { kvContext, readSource } from "../vault/kv.js";
import type { LeaseSpec } from "../vault/leases.js";
import { LeaseStore, decideLease, resolveLease } from "../vault/leases.js";
import type { CurrentToken } from "../vault/token-horizon.js";
import type { Forces } from "./result.js";
import { errorCode } from "./record.js";

/** An old lease to revoke once the outputs using it are committed and their hooks ran. */
export interface ReplacedLease {
  source: string;
  leaseId: string;
}

export interface Fetched {
  sources: SourceResults;
  revokes: ReplacedLease[];
  /** Dry run: what would happen to each lease. */
  notes: string[];
}

/** The static sources `names`, each its data or its error. */
export async function fetchStatic(run: RunContext, names: string[]): Promise<Map<string, SourceData | Error>> {
  const results = new Map<string, SourceData | Error>();
  const kv = kvContext(run.layout.sources.values());
  await mapLimit(names, run.layout.vault.concurrency, async (name) => {
    const spec = run.layout.sources.get(name) as StaticSource;
    try {
      const d = await readSource(run.client, spec, run.state, kv);
      run.opts.redactor.add(d.data);
      results.set(name, d);
    } catch (e) {
      results.set(name, e instanceof Error ? e : new Error(String(e)));
    }
  });
  return results;
}

/** Every source in `known`: static ones first (again, once, after a login if the token was revoked meanwhile), then leases. */
export async function fetchSources(run: RunContext, known: string[], forces: Forces): Promise<Fetched> {
  const { layout, opts } = run;
  const leaseNames = known.filter((n) => layout.sources.get(n)?.type === "lease");
  const staticNames = known.filter((n) => layout.sources.get(n)?.type !== "lease");
  let sources = await fetchStatic(run, staticNames);
  const invalid = [...sources].filter(([, r]) => r instanceof VaultRequestError && r.kind === "invalid-token").map(([n]) => n);
  if (invalid.length > 0) {
    opts.log.info("the token was revoked during the run; logging in again once");
    await relogin(run);
    sources = new Map([...sources, ...(await fetchStatic(run, invalid))]);
  }
  const leases = await fetchLeases(run, leaseNames, forces);
  return { sources: new Map([...sources, ...leases.data]), revokes: leases.revokes, notes: leases.notes };
}

/**
 * A lease dies with the token that created it. When this run is about to read new leased
 * credentials of a life `ttlMs` and its token has a known hard end (the max TTL) before that,
 * log in first: otherwise the new credentials die with the old token, and the run that logs in
 * replaces them again (a second set of credentials and a second hook run for nothing).
 * Returns the new token, or undefined when the current one is kept.
 */
async function loginIfTokenEndsWithin(run: RunContext, ttlMs: number): Promise<CurrentToken | undefined> {
  // Only a known hard end counts (the max TTL): a renewable token's expiry moves with renewals.
  const goneBy = run.state.token?.id === run.token.id ? (run.state.token.maxExpiresAt ?? null) : null;
  // A token from a login of this run is as fresh as a login can make it.
  if (run.opts.dryRun || run.authCtx.readOnly || run.token.loggedIn || goneBy === null || ttlMs <= 0) return undefined;
  const now = run.opts.clock.now();
  if (goneBy >= now + ttlMs) return undefined;
  run.opts.log.info(`logging in before reading new leased credentials: the current token is gone in ${formatDuration(Math.max(0, goneBy - now))}, before them`);
  try {
    return await relogin(run);
  } catch (e) {
    // The current token still serves this run; the credentials are replaced again after a login.
    run.opts.log.warn({ code: errorCode(e as Error) }, `could not log in before reading new credentials: ${describeError(e as Error)}; reading them with the current token`);
    return undefined;
  }
}

async function fetchLeases(run: RunContext, names: string[], forces: Forces): Promise<{ data: Map<string, SourceData | Error>; revokes: ReplacedLease[]; notes: string[] }> {
  const { opts } = run;
  const out = { data: new Map<string, SourceData | Error>(), revokes: [] as ReplacedLease[], notes: [] as string[] };
  const store = new LeaseStore(run.layout.agentDir);
  const cache = await store.load();
  for (const name of names) {
    const spec = run.layout.sources.get(name) as LeaseSpec;
    const force = forces.leases.has(name);
    try {
      if (opts.dryRun) {
        const { decision, reason } = decideLease(spec, run.state.leases[name], cache[name], opts.clock.now(), force, run.token);
        if (decision !== "keep") out.notes.push(`lease     ${name}  would ${decision} (${reason})`);
        const cached = cache[name];
        if (!cached) throw new DryRunPending(`new credentials would be read from ${spec.path}`);
        opts.redactor.add(cached.data);
        out.data.set(name, { data: cached.data });
        continue;
      }
      const r = await resolveLease(name, spec, {
        client: run.client,
        state: run.state,
        store,
        now: opts.clock.now,
        force,
        saveState: () => run.save(),
        warn: (msg) => opts.log.warn(msg),
        token: run.token,
        freshToken: (ttlMs) => loginIfTokenEndsWithin(run, ttlMs),
      });
      opts.redactor.add(r.data);
      out.data.set(name, { data: r.data });
      if (r.action !== "kept") opts.log.info({ source: name, action: r.action }, `lease ${name}: ${r.action}${r.reason ? ` (${r.reason})` : ""}`);
      if (r.oldLeaseId) out.revokes.push({ source: name, leaseId: r.oldLeaseId });
    } catch (e) {
      out.data.set(name, e instanceof Error ? e : new Error(String(e)));
    }
  }
  return out;
}
