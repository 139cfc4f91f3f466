/**
 * Change hooks: each hook whose outputs changed runs once per run, in layout order, after every
 * write of the run is committed. argv without a shell unless asked; a timeout with SIGTERM, then
 * SIGKILL, to its process group; done when its process exits (a background process it leaves
 * holding stdout/stderr is not waited for); output logged through the redactor; the changed
 * files in its environment. Pending hooks are persisted in state, so a change is never silently
 * unnotified.
 */
import { spawn } from "node:child_process";
import type { Env } from "../layout/load.js";
import type { HookSpec } from "../layout/schema.js";
import type { Logger } from "../support/log.js";
import { parseDuration } from "../support/duration.js";
import { BoundedText, cutText } from "../support/redact.js";
import type { Redactor } from "../support/redact.js";
import type { Clock } from "../support/clock.js";
import { systemClock } from "../support/clock.js";

export const KILL_GRACE_MS = 5000;
/** After the hook exits, how long its output is still read while a descendant holds the pipes. */
const DRAIN_MS = 1000;

export interface HookRun {
  name: string;
  ok: boolean;
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  error?: string;
}

const MAX_CAPTURE = 64 * 1024;
const MAX_LINE = 500;

/**
 * The hook's output as log lines: redacted as a whole first (a multi-line secret is matched whole;
 * a secret cut off by the capture limit loses its visible prefix too), then split and each line
 * cut without splitting a character.
 */
export function hookOutputLines(captured: BoundedText, redactor: Redactor | undefined): string[] {
  const text = !redactor ? captured.text : captured.truncated ? redactor.redactCutOff(captured.text) : redactor.redact(captured.text);
  return text
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => cutText(l, MAX_LINE));
}

export function runHook(name: string, spec: HookSpec, files: string[], opts: { env: Env; cwd: string; log: Logger; redactor?: Redactor; clock?: Clock }): Promise<HookRun> {
  const clock = opts.clock ?? systemClock;
  const timeoutMs = spec.timeout ? parseDuration(spec.timeout) : 60_000;
  const [cmd, args] = spec.shell ? ["/bin/sh", ["-c", spec.command as string]] : [(spec.command as string[])[0] as string, (spec.command as string[]).slice(1)];
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.env)) if (v !== undefined && !k.startsWith("VAULT_")) env[k] = v;
  env.VAULT_RENDER_HOOK = name;
  env.VAULT_RENDER_CHANGED_FILES = files.join("\n");
  return new Promise((resolve) => {
    const out = new BoundedText(MAX_CAPTURE);
    let timedOut = false;
    let exited = false;
    /** Ends every pending wait of this hook (timeout, kill grace, drain) once it is finished. */
    const waits = new AbortController();
    const wait = (ms: number) => clock.sleep(ms, waits.signal).then(() => !waits.signal.aborted);
    // Its own process group, so a timeout stops the hook and everything it started.
    const child = spawn(cmd, args, { cwd: opts.cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
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
    const finish = (r: Omit<HookRun, "name">) => {
      if (done) return;
      done = true;
      waits.abort();
      // A timed-out hook's group is killed outright, whatever its leader did meanwhile.
      if (timedOut) signalGroup("SIGKILL");
      // A descendant (a daemon it started, a setsid'd child) may still hold the pipes: stop
      // reading them, so neither this run nor the process waits for it.
      child.stdout.destroy();
      child.stderr.destroy();
      for (const line of hookOutputLines(out, opts.redactor)) opts.log.info({ hook: name }, `hook ${name}: ${line}`);
      resolve({ name, ...r });
    };
    // The timeout: SIGTERM to the group, SIGKILL after a grace, and after a second grace the wait
    // ends whatever the processes do (one stuck in the kernel cannot hold the lock for ever).
    void (async () => {
      if (!(await wait(timeoutMs)) || exited) return;
      timedOut = true;
      signalGroup("SIGTERM");
      if (!(await wait(KILL_GRACE_MS)) || exited) return;
      signalGroup("SIGKILL");
      if (!(await wait(KILL_GRACE_MS)) || exited) return;
      finish({ ok: false, code: null, signal: null, timedOut });
    })();
    child.on("error", (e) => finish({ ok: false, code: null, signal: null, timedOut: false, error: (e as NodeJS.ErrnoException).code ?? e.message }));
    // The hook is done when its process exits; its output is drained until the pipes close, for
    // at most DRAIN_MS (a background process it left may keep them open for ever).
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

export function describeHookFailure(r: HookRun, spec: HookSpec): string {
  if (r.error) return `hook ${r.name} could not start: ${r.error}`;
  if (r.timedOut) return `hook ${r.name} timed out after ${spec.timeout ?? "60s"} and was stopped (${r.signal ?? "exited"})`;
  if (r.signal) return `hook ${r.name} was killed by ${r.signal}`;
  return `hook ${r.name} failed with exit code ${r.code}`;
}
