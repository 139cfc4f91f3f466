/** A run's hold on agent-only/lock (the lock itself is fs/lock.ts). */
import path from "node:path";
import { Lock, processAlive } from "../fs/lock.js";
import type { ResolvedLayout } from "../layout/load.js";
import type { RunOptions } from "./context.js";

/** Run `fn` holding agent-only/lock (not taken for dry runs, which write nothing). */
export async function withLock<T>(layout: ResolvedLayout, opts: RunOptions, command: string, fn: () => Promise<T>): Promise<T> {
  const lock = opts.dryRun
    ? null
    : await Lock.acquire(path.join(layout.agentDir, "lock"), command, opts.lockTimeoutMs, {
        now: opts.clock.now,
        sleep: opts.clock.sleep,
        isAlive: processAlive,
        signal: opts.signal,
        onWait: (holder) => opts.log.info({ holder }, `waiting for the lock held by ${holder}`),
        onBreak: (holder, reason) => opts.log.info({ holder, reason }, `removed the stale lock of ${holder}: ${reason}`),
      });
  try {
    return await fn();
  } finally {
    await lock?.release();
  }
}
