/**
 * The in-process test level: argv → options → core against the Vault double, in the test's own
 * process, through the same `main(argv, host)` the bin calls (src/cli.ts, transformed by vitest).
 * The result has runCli's shape (captured stdout/stderr, exit code, signal null). What a process
 * alone can show (exit status as the OS sees it, signals, crashes, EPIPE, lock contention between
 * processes, the watch daemon) stays with runCli.
 */
import { Writable } from "node:stream";
import { main } from "../../src/cli.js";
import { systemClock } from "../../src/core/support/clock.js";
import type { Clock } from "../../src/core/support/clock.js";
import type { RunResult } from "../helpers.js";
import { hooksFromEnv } from "./test-hooks.js";

/** What runCli's child gets: this process's environment without VAULT_*, NO_COLOR=1, then `extra`. */
function cliEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, NO_COLOR: "1" })) if (v !== undefined && !k.startsWith("VAULT_")) env[k] = v;
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

class Capture extends Writable {
  text = "";
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.text += typeof chunk === "string" ? chunk : chunk.toString("utf8");
    cb();
  }
}

const SIGNALS = ["SIGTERM", "SIGINT", "SIGHUP"] as const;

/**
 * Process-wide state an in-process run sets (umask, cwd) and restores: runs may overlap only when
 * they want the same (a run with another umask or cwd than the ones in force throws).
 */
let active: { count: number; umask: string | undefined; cwd: string | undefined; restore: () => void; listeners: number[] } | undefined;

function enter(umask: string | undefined, cwd: string | undefined): void {
  if (active) {
    if (active.umask !== umask || active.cwd !== cwd) throw new Error('runInProcess: overlapping runs with different umask or cwd (use mode: "child")');
    active.count++;
    return;
  }
  const listeners = SIGNALS.map((s) => process.listenerCount(s));
  const prevUmask = umask !== undefined ? process.umask(parseInt(umask, 8)) : undefined;
  const prevCwd = cwd !== undefined ? process.cwd() : undefined;
  if (cwd !== undefined) process.chdir(cwd);
  const restore = () => {
    if (prevUmask !== undefined) process.umask(prevUmask);
    if (prevCwd !== undefined) process.chdir(prevCwd);
  };
  active = { count: 1, umask, cwd, restore, listeners };
}

/** Restores the process after the last overlapping run; the signal listeners a run left behind. */
function leave(): string[] {
  if (!active) return [];
  if (--active.count > 0) return [];
  const { restore, listeners } = active;
  active = undefined;
  restore();
  return SIGNALS.filter((s, i) => process.listenerCount(s) !== listeners[i]);
}

export interface InProcessOptions {
  env?: Record<string, string | undefined>;
  /** Octal text, as for `sh -c 'umask 027'`; set for the run and restored after it. */
  umask?: string;
  /** Working directory for the run (process.chdir, restored after it). */
  cwd?: string;
  /** The run's clock (default: the system clock), e.g. one that records the waits it is asked for. */
  clock?: Clock;
}

export async function runInProcess(args: string[], opts: InProcessOptions = {}): Promise<RunResult> {
  const env = cliEnv(opts.env);
  const testHooks = hooksFromEnv(env, () => {
    throw new Error('runInProcess: VAULT_RENDER_TEST_FAULT=kill: kills the process; run it with mode: "child"');
  });
  const stdout = new Capture();
  const stderr = new Capture();
  enter(opts.umask, opts.cwd);
  let code: number;
  let leaked: string[];
  try {
    code = await main(args, { env, stdout, stderr, stdoutIsTTY: false, stderrIsTTY: false, clock: opts.clock ?? systemClock, testHooks });
  } catch (e) {
    // What bin/vault-render.js prints for a rejection of main.
    stderr.write(`vault-render: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
    code = 1;
  } finally {
    leaked = leave();
  }
  // A run must leave the process as it found it (a leaked handler would answer the next run's signals).
  if (leaked.length > 0) throw new Error(`runInProcess: the run left ${leaked.join(", ")} listeners behind`);
  return { code, signal: null, stdout: stdout.text, stderr: stderr.text };
}
