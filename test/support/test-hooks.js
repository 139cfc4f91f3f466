// The test-only environment variables, read by the test entries only (never by the CLI):
//   VAULT_RENDER_TEST_NOW_OFFSET=<seconds>   moves the run's clock, as the double's advanceTime does;
//   VAULT_RENDER_TEST_FAULT=<kind>:<part>    a fault at the writer's boundary for a file whose path
//                                            contains <part>: "kill" SIGKILLs the process just before
//                                            writing it, "enospc" fails that write with ENOSPC,
//                                            "rename" fails its rename over the target with EIO;
//   VAULT_RENDER_TEST_FIRST_BACKOFF=<ms>     watch's first retry delay, in milliseconds or with a
//                                            unit (300ms, 5s, 5m).
// Plain JS so that test/support/cli-with-hooks.js can run it under plain node against dist/.

export const TEST_ENV_PREFIX = "VAULT_RENDER_TEST_";

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function durationMs(text) {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(text);
  if (!m) throw new Error(`VAULT_RENDER_TEST_FIRST_BACKOFF: "${text}" is not a duration (e.g. 300ms, 5m)`);
  const ms = Number(m[1]) * UNIT_MS[m[2] ?? "ms"];
  if (!(ms > 0)) throw new Error(`VAULT_RENDER_TEST_FIRST_BACKOFF: "${text}" must be longer than 0`);
  return ms;
}

/** True when env sets any of the test-only variables (such a run needs a test entry). */
export function wantsHooks(env) {
  return Object.entries(env ?? {}).some(([k, v]) => k.startsWith(TEST_ENV_PREFIX) && v !== undefined && v !== "");
}

/**
 * The hooks those variables ask for. `kill` is what a killed process does: `onKill` runs it (the
 * child entry SIGKILLs itself; in-process it cannot be done, and the caller says so).
 */
export function hooksFromEnv(env, onKill) {
  const hooks = {};
  const offset = env.VAULT_RENDER_TEST_NOW_OFFSET;
  if (offset && /^-?\d+$/.test(offset) && Number(offset) !== 0) hooks.nowOffsetMs = Number(offset) * 1000;
  const backoff = env.VAULT_RENDER_TEST_FIRST_BACKOFF;
  if (backoff) hooks.firstBackoffMs = durationMs(backoff);
  const fault = env.VAULT_RENDER_TEST_FAULT ? /^(kill|enospc|rename):(.+)$/.exec(env.VAULT_RENDER_TEST_FAULT) : null;
  if (fault) {
    const [, kind, part] = fault;
    hooks.writeFault = (file, _offset, op) => {
      if (!file.includes(part)) return;
      if ((kind === "rename") !== (op === "rename")) return;
      if (kind === "rename") throw Object.assign(new Error("injected fault: rename failed"), { code: "EIO" });
      if (kind === "kill") onKill();
      throw Object.assign(new Error("injected fault: no space left on device"), { code: "ENOSPC" });
    };
  }
  return hooks;
}
