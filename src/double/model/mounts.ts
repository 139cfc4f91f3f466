/** The mount table: the paths engines are mounted at, and the longest-prefix lookup. */
import { randomUUID } from "node:crypto";
import type { State } from "../state.js";
import { hex } from "../util.js";
import type { Obj } from "../util.js";
import type { Mount, MountKind } from "./types.js";

export function addMount(s: State, path: string, type: string, kind: MountKind, description: string, options: Record<string, string> | null = null): Mount {
  const m: Mount = {
    path,
    type,
    kind,
    accessor: `${type}_${hex(8)}`,
    uuid: randomUUID(),
    description,
    options,
    runningVersion: kind === "kv1" || kind === "kv2" ? "v0.20.0+builtin" : `v${s.versionString}+builtin.vault`,
    kv1: new Map(),
    kv2: new Map(),
    kv2Config: { casRequired: false, maxVersions: 0, deleteVersionAfter: "0s" },
    roles: new Map(),
  };
  s.mounts.set(path, m);
  return m;
}

export function findMount(s: State, path: string): Mount | undefined {
  const probe = `${path}/`;
  let best: Mount | undefined;
  for (const m of s.mounts.values()) {
    if (probe.startsWith(m.path) && (!best || m.path.length > best.path.length)) best = m;
  }
  return best;
}

/** A mount as Vault describes it (sys/internal/ui/mounts, sys/mounts): the same fields everywhere; `path` only where Vault gives it. */
export function mountInfo(m: Mount, withPath: boolean): Obj {
  const info: Obj = {
    accessor: m.accessor,
    config: { default_lease_ttl: 0, force_no_cache: false, max_lease_ttl: 0 },
    description: m.description,
    external_entropy_access: false,
    local: m.kind === "cubbyhole",
    options: m.options ? { ...m.options } : null,
    plugin_version: "",
    running_plugin_version: m.runningVersion,
    running_sha256: "",
    seal_wrap: false,
    type: m.type,
    uuid: m.uuid,
  };
  if (withPath) info["path"] = m.path;
  return info;
}
