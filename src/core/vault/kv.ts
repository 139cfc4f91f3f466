/**
 * Reading sources from Vault: KV v1 / v2 (version detected through sys/internal/ui/mounts once
 * and cached in state, unless declared) and generic reads.
 */
import type { SourceSpec } from "../layout/schema.js";

export type StaticSource = Exclude<SourceSpec, { type: "lease" }>;
import type { State } from "../state/state.js";
import type { VaultClient } from "./client.js";
import { VaultRequestError } from "./client.js";

export interface SourceData {
  data: Record<string, unknown>;
  /** The Vault path it was read from (for messages). */
  path?: string;
  /** KV v2 version that was read. */
  version?: number;
}

async function detectKvVersion(client: VaultClient, mount: string): Promise<1 | 2> {
  try {
    const res = await client.read(`sys/internal/ui/mounts/${mount}`);
    const opts = res.data?.options as { version?: unknown } | null | undefined;
    return opts && opts.version === "2" ? 2 : 1;
  } catch (e) {
    // Only a 404 (very old Vault without the endpoint) means v1. A 403 is the anti-enumeration
    // answer for "no access or no such mount": it must not silently become v1.
    if (e instanceof VaultRequestError && e.kind === "not-found") return 1;
    throw e;
  }
}

type KvSpec = Extract<SourceSpec, { type: "kv" }>;

/**
 * The KV version the layout settles for each mount: a mount has one version, so a `kvVersion`
 * declared on one source serves every source on it (conflicting declarations settle nothing).
 */
export function settledKvVersions(sources: Iterable<SourceSpec>): Map<string, 1 | 2> {
  const settled = new Map<string, 1 | 2>();
  const conflicting = new Set<string>();
  for (const s of sources) {
    if (s.type !== "kv" || s.kvVersion === undefined) continue;
    const prev = settled.get(s.mount);
    if (prev !== undefined && prev !== s.kvVersion) conflicting.add(s.mount);
    settled.set(s.mount, s.kvVersion);
  }
  for (const m of conflicting) settled.delete(m);
  return settled;
}

/**
 * The KV version a source will be read with, or undefined when it is detected at run time. A
 * pinned version or a generator exist only in KV v2, so they settle it too.
 */
export function kvVersionFor(spec: KvSpec, settled: Map<string, 1 | 2>): 1 | 2 | undefined {
  return spec.kvVersion ?? settled.get(spec.mount) ?? (spec.version !== undefined || spec.generate !== undefined ? 2 : undefined);
}

/** Per run: the layout's settled versions and the detections in flight (one preflight per mount). */
export interface KvContext {
  settled: Map<string, 1 | 2>;
  detecting: Map<string, Promise<1 | 2>>;
}

export function kvContext(sources: Iterable<SourceSpec>): KvContext {
  return { settled: settledKvVersions(sources), detecting: new Map() };
}

/**
 * A 403 on a KV read is as often a wrong path (another mount, the KV version mixed up, "data/"
 * written into the path) as a missing policy: the hint names both, with the path as it was read.
 */
async function kvPathChecked<T>(spec: { mount: string; path: string }, v: 1 | 2, read: Promise<T>): Promise<T> {
  try {
    return await read;
  } catch (e) {
    if (!(e instanceof VaultRequestError) || e.kind !== "permission" || e.status !== 403) throw e;
    const readAt = v === 2 ? `${spec.mount}/data/${spec.path}` : `${spec.mount}/${spec.path}`;
    throw new VaultRequestError(
      "permission",
      e.vaultPath,
      e.status,
      e.message,
      e.body,
      `check the path as well as the policy: mount "${spec.mount}", path "${spec.path}" (without "data/"), KV v${v}, so read at ${readAt}; not retried`,
    );
  }
}

export async function readSource(client: VaultClient, spec: StaticSource, state: State, kv: KvContext): Promise<SourceData> {
  if (spec.type === "read") {
    const res = await client.read(spec.path);
    return { data: (res.data ?? {}), path: spec.path };
  }
  let v: 1 | 2 | undefined = kvVersionFor(spec, kv.settled) ?? state.mounts[spec.mount];
  if (v === undefined) {
    let p = kv.detecting.get(spec.mount);
    if (!p) {
      p = detectKvVersion(client, spec.mount);
      kv.detecting.set(spec.mount, p);
    }
    v = await p;
    state.mounts[spec.mount] = v;
  }
  if (v === 1 && spec.version !== undefined) {
    throw new VaultRequestError("client", `${spec.mount}/${spec.path}`, undefined, `read ${spec.mount}/${spec.path}: "version" is pinned but "${spec.mount}" is a KV v1 mount (versions exist only in KV v2)`, undefined, 'remove "version" or point the source at a KV v2 mount');
  }
  if (v === 1) {
    const res = await kvPathChecked(spec, 1, client.read(`${spec.mount}/${spec.path}`));
    return { data: (res.data ?? {}), path: `${spec.mount}/${spec.path}` };
  }
  const query = spec.version !== undefined ? { version: String(spec.version) } : undefined;
  const res = await kvPathChecked(spec, 2, client.read(`${spec.mount}/data/${spec.path}`, { query }));
  const inner = res.data as { data?: Record<string, unknown> | null; metadata?: { version?: number } } | null | undefined;
  if (!inner || !inner.data || typeof inner.data !== "object") {
    throw new VaultRequestError("not-found", `${spec.mount}/data/${spec.path}`, 200, `read ${spec.mount}/data/${spec.path}: the answer has no data (is "${spec.mount}" really KV v2?)`, undefined);
  }
  return { data: inner.data, version: inner.metadata?.version, path: `${spec.mount}/data/${spec.path}` };
}
