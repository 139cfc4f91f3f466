/**
 * Child processes: the one module of the core that starts them (lint-enforced). A command is an
 * argv (no shell unless the argv names one), run in its own process group with the environment
 * it is given, its stdout and stderr captured together up to a bound; a timeout sends SIGTERM to
 * the group, SIGKILL after a grace, and after a second grace the wait ends whatever the processes
 * do (one stuck in the kernel cannot hold the lock for ever). Every wait goes through the run's
 * clock. It is done when its process exits (a background process it left holding the pipes is
 * read for at most a short drain, never waited for). Hooks and validators are built on it.
 */
import { spawn } from "node:child_process";
import type { Clock } from "./clock.js";
import { BoundedText } from "./redact.js";

/** After SIGTERM, how long before SIGKILL (and after SIGKILL, before the wait is given up). */
export const KILL_GRACE_MS = 5000;
/** After the command exits, how long its output is still read while a descendant holds the pipes. */
const DRAIN_MS = 1000;
/** Output kept by default (stdout and stderr together). */
const MAX_CAPTURE = 64 * 1024;

export interface CommandSpec {
  argv: readonly string[];
  env: Record<string, string>;
  cwd: string;
  timeoutMs: number;
  clock: Clock;
  /** Bytes of output kept (default 64 KiB); the rest is counted as truncated. */
  maxCapture?: number;
}

export interface CommandRun {
  ok: boolean;
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  /** Could not start (the errno code, e.g. ENOENT). */
  error?: string;
  output: BoundedText;
}

export function runCommand(spec: CommandSpec): Promise<CommandRun> {
  const { clock } = spec;
  const [cmd, ...args] = spec.argv;
  return new Promise((resolve) => {
    const out = new BoundedText(spec.maxCapture ?? MAX_CAPTURE);
    if (cmd === undefined) return resolve({ ok: false, code: null, signal: null, timedOut: false, error: "empty command", output: out });
    let timedOut = false;
    let exited = false;
    /** Ends every pending wait (timeout, kill grace, drain) once the command is finished. */
    const waits = new AbortController();
    const wait = (ms: number) => clock.sleep(ms, waits.signal).then(() => !waits.signal.aborted);
    // Its own process group, so a timeout stops the command and everything it started.
    const child = spawn(cmd, args, { cwd: spec.cwd, env: spec.env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    const signalGroup = (sig: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, sig);
      } catch {
        child.kill(sig);
      }
    };
    const collect = (d: Buffer) => out.write(d);
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    let done = false;
    const finish = (r: Omit<CommandRun, "output">) => {
      if (done) return;
      done = true;
      waits.abort();
      // A timed-out command's group is killed outright, whatever its leader did meanwhile.
      if (timedOut) signalGroup("SIGKILL");
      // A descendant (a daemon it started, a setsid'd child) may still hold the pipes: stop
      // reading them, so neither this run nor the process waits for it.
      child.stdout.destroy();
      child.stderr.destroy();
      resolve({ ...r, output: out });
    };
    void (async () => {
      if (!(await wait(spec.timeoutMs)) || exited) return;
      timedOut = true;
      signalGroup("SIGTERM");
      if (!(await wait(KILL_GRACE_MS)) || exited) return;
      signalGroup("SIGKILL");
      if (!(await wait(KILL_GRACE_MS)) || exited) return;
      finish({ ok: false, code: null, signal: null, timedOut });
    })();
    child.on("error", (e) => finish({ ok: false, code: null, signal: null, timedOut: false, error: (e as NodeJS.ErrnoException).code ?? e.message }));
    child.on("exit", (code, signal) => {
      exited = true;
      const result = () => finish({ ok: code === 0 && !timedOut, code, signal, timedOut });
      if (child.stdout.closed && child.stderr.closed) return result();
      let open = 2;
      const closed = () => {
        if (--open === 0) result();
      };
      for (const s of [child.stdout, child.stderr]) {
        if (s.closed) closed();
        else s.once("close", closed);
      }
      void wait(DRAIN_MS).then((expired) => {
        if (expired) result();
      });
    });
  });
}

/** The environment a child gets: the run's, without VAULT_* (no address, token or namespace), plus `extra`. */
export function childEnv(env: Record<string, string | undefined>, extra: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && !k.startsWith("VAULT_")) out[k] = v;
  return { ...out, ...extra };
}

/** How a command that did not succeed ended, e.g. "failed with exit code 1", "timed out after 30s and was stopped (SIGTERM)". */
export function describeEnd(r: Omit<CommandRun, "output">, timeoutText: string): string {
  if (r.error) return `could not start: ${r.error}`;
  if (r.timedOut) return `timed out after ${timeoutText} and was stopped (${r.signal ?? "exited"})`;
  if (r.signal) return `was killed by ${r.signal}`;
  return `failed with exit code ${r.code}`;
}
