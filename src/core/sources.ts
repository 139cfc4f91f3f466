/**
 * Reading sources from Vault: KV v1 / v2 (version detected through sys/internal/ui/mounts once
 * and cached in state, unless declared) and generic reads.
 */
import type { SourceSpec } from "./layout/schema.js";

export type StaticSource = Exclude<SourceSpec, { type: "lease" }>;
import type { State } from "./state.js";
import type { VaultClient } from "./vault/client.js";
import { VaultRequestError } from "./vault/client.js";

export interface SourceData {
  data: Record<string, unknown>;
  /** The Vault path it was read from (for messages). */
  path?: string;
  /** KV v2 version that was read. */
  version?: number;
}

/** Where a source is read from (for messages and the policy). */
export function sourceReadPath(spec: StaticSource, kvVersion: 1 | 2 | undefined): string {
  if (spec.type === "read") return spec.path;
  return kvVersion === 2 ? `${spec.mount}/data/${spec.path}` : `${spec.mount}/${spec.path}`;
}

export async function detectKvVersion(client: VaultClient, mount: string): Promise<1 | 2> {
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

/**
 * KV versions the layout settles per mount: a declared `kvVersion`, or a pinned `version` or a
 * `generate` rule (both exist only in v2). One declaration serves every source on that mount.
 */
export function declaredKvVersions(sources: Iterable<SourceSpec>): Map<string, Promise<1 | 2>> {
  const out = new Map<string, Promise<1 | 2>>();
  for (const s of sources) {
    if (s.type !== "kv") continue;
    const v = s.kvVersion ?? (s.version !== undefined || s.generate ? 2 : undefined);
    if (v !== undefined && !out.has(s.mount)) out.set(s.mount, Promise.resolve(v));
  }
  return out;
}

export async function readSource(client: VaultClient, spec: StaticSource, state: State, kvCache: Map<string, Promise<1 | 2>>): Promise<SourceData> {
  if (spec.type === "read") {
    const res = await client.read(spec.path);
    return { data: (res.data ?? {}) as Record<string, unknown>, path: spec.path };
  }
  let v: 1 | 2 | undefined = spec.kvVersion ?? (await kvCache.get(spec.mount)) ?? state.mounts[spec.mount];
  if (v === undefined) {
    let p = kvCache.get(spec.mount);
    if (!p) {
      p = detectKvVersion(client, spec.mount);
      kvCache.set(spec.mount, p);
    }
    v = await p;
    state.mounts[spec.mount] = v;
  }
  if (v === 1 && spec.version !== undefined) {
    throw new VaultRequestError("client", `${spec.mount}/${spec.path}`, undefined, `read ${spec.mount}/${spec.path}: "version" is pinned but "${spec.mount}" is a KV v1 mount (versions exist only in KV v2)`, undefined, 'remove "version" or point the source at a KV v2 mount');
  }
  if (v === 1) {
    const res = await client.read(`${spec.mount}/${spec.path}`);
    return { data: (res.data ?? {}) as Record<string, unknown>, path: `${spec.mount}/${spec.path}` };
  }
  const query = spec.version !== undefined ? { version: String(spec.version) } : undefined;
  const res = await client.read(`${spec.mount}/data/${spec.path}`, { query });
  const inner = res.data as { data?: Record<string, unknown> | null; metadata?: { version?: number } } | null | undefined;
  if (!inner || !inner.data || typeof inner.data !== "object") {
    throw new VaultRequestError("not-found", `${spec.mount}/data/${spec.path}`, 200, `read ${spec.mount}/data/${spec.path}: the answer has no data (is "${spec.mount}" really KV v2?)`, undefined);
  }
  return { data: inner.data, version: inner.metadata?.version, path: `${spec.mount}/data/${spec.path}` };
}
