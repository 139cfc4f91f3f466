/**
 * Shared helpers for the reliability suite (docs/reliability.md). Sizes: CI by default, the big
 * numbers with STRESS=1.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { lstat, readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { BIN, scaled } from "../helpers.js";
import type { Tree } from "../helpers.js";
import type { Clock } from "../../src/core/support/clock.js";
import { systemClock } from "../../src/core/support/clock.js";

const STRESS = process.env.STRESS === "1";
/** CI size, or the stress size with STRESS=1. */
export const size = (ci: number, stress: number): number => (STRESS ? stress : ci);
/** A test timeout that grows with the stress size (and with VR_TEST_SCALE). */
export const budget = (ciMs: number, stressMs: number): number => scaled(STRESS ? stressMs : ciMs);

/** Every time limit: `ms` times VR_TEST_SCALE (test/support/scale.ts). */
export { scaled };

const TEMP_PREFIX = ".vault-render.tmp-";

export function childEnv(extra: Record<string, string | undefined>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("VAULT_")) env[k] = v;
  env.NO_COLOR = "1";
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

export interface Spawned {
  child: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** Start the built CLI against a tree without waiting for it (for kill -9 and concurrency tests). */
export function spawnCli(t: Tree, args: string[], env: Record<string, string | undefined> = {}): Spawned {
  const child = spawn(process.execPath, [BIN, "--layout", t.layoutFile, ...args], { cwd: t.dir, env: childEnv({ VAULT_ADDR: t.double.url, ...env }), stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

/** Every path under dir (recursive, relative), files and symlinks, not directories. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    let names: string[];
    try {
      names = await readdir(path.join(dir, rel));
    } catch {
      return;
    }
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      const st = await lstat(path.join(dir, r));
      if (st.isDirectory()) await walk(r);
      else out.push(r);
    }
  };
  await walk("");
  return out.sort();
}

/** Temp files (our reserved prefix) anywhere under dir. */
export async function tempFiles(dir: string): Promise<string[]> {
  return (await listFiles(dir)).filter((f) => path.basename(f).startsWith(TEMP_PREFIX));
}

/** Every file's text under dir, concatenated with its name (for "does X appear anywhere" checks). */
export async function allText(dir: string, skip: (rel: string) => boolean = () => false): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = [];
  for (const f of await listFiles(dir)) {
    if (skip(f)) continue;
    try {
      out.push([f, await readFile(path.join(dir, f), "latin1")]);
    } catch {
      // a symlink to nowhere, a file removed meanwhile
    }
  }
  return out;
}

/** A stack trace line as Node prints it. */
export const STACK_RE = /\n\s+at .+\(.+:\d+:\d+\)|\n\s+at [^\s]+:\d+:\d+/;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Wait for a condition (polled every 10 ms), not for a time: fails naming `what` once the scaled
 * limit has passed without it.
 */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + scaled(limitMs);
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${scaled(limitMs)} ms`);
    await sleep(10);
  }
}

/** Does a path exist (any type)? */
export const exists = (p: string): Promise<boolean> => lstat(p).then(() => true, () => false);

/**
 * The run's clock: real time, but the waits between retries are recorded and not slept (the
 * backoff and Retry-After are checked as the waits the client asked for, not by a stopwatch).
 * A wait with a signal (the lock's heartbeat, ended when the lock is released) is real.
 */
export function retryWaitsClock(): Clock & { waits: number[] } {
  const waits: number[] = [];
  return {
    waits,
    now: () => systemClock.now(),
    random: () => systemClock.random(),
    sleep: (ms, signal) => {
      if (signal) return systemClock.sleep(ms, signal);
      waits.push(ms);
      return Promise.resolve();
    },
  };
}

/** A deterministic PRNG (mulberry32) so failing trials can be replayed with the printed seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
