/** Response wrapping: single-use wrapping tokens holding a response until they are unwrapped or expire. */
import type { State } from "../state.js";
import { clone, fmtTime, randomBase62 } from "../util.js";
import type { Env, WrapEntry, WrapInfo } from "./types.js";

export function createWrap(s: State, env: Env, ttl: number, creationPath: string, wrappedAccessor?: string): WrapEntry {
  const created = s.clock.stamp();
  const w: WrapEntry = {
    token: `hvs.${randomBase62(24)}`,
    accessor: randomBase62(24),
    ttl,
    created,
    creationPath,
    env: { ...clone(env), requestId: undefined },
    expireAtMs: created.ms + ttl * 1000,
    wrappedAccessor,
  };
  s.wraps.set(w.token, w);
  return w;
}

export function wrapEnv(w: WrapEntry): Env {
  const info: WrapInfo = {
    token: w.token,
    accessor: w.accessor,
    ttl: w.ttl,
    creation_time: fmtTime(w.created),
    creation_path: w.creationPath,
  };
  if (w.wrappedAccessor) info.wrapped_accessor = w.wrappedAccessor;
  return { requestId: "", data: null, wrapInfo: info, mountType: "" };
}

export function liveWrap(s: State, token: string): WrapEntry | undefined {
  const w = s.wraps.get(token);
  if (!w) return undefined;
  if (s.clock.now() >= w.expireAtMs) {
    s.wraps.delete(token);
    s.deadTokenAccessors.set(token, w.accessor);
    return undefined;
  }
  return w;
}

export function consumeWrap(s: State, token: string): WrapEntry | undefined {
  const w = liveWrap(s, token);
  if (w) {
    s.wraps.delete(token);
    s.deadTokenAccessors.set(token, w.accessor);
  }
  return w;
}
