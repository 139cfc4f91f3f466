/** The mount table: the paths engines are mounted at, and the longest-prefix lookup. */
import { randomUUID } from "node:crypto";
import type { State } from "../state.js";
import { hex } from "../util.js";
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
