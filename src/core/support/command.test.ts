import { describe, expect, it } from "vitest";
import type { Clock } from "./clock.js";
import { systemClock } from "./clock.js";
import { KILL_GRACE_MS, childEnv, describeEnd, runCommand } from "./command.js";

/** The system clock with every requested wait recorded and mapped (a 5 s grace taken as 50 ms). */
function clock(map: (ms: number) => number = (ms) => ms): Clock & { sleeps: number[] } {
  const sleeps: number[] = [];
  return { ...systemClock, sleeps, sleep: (ms, signal) => (sleeps.push(ms), systemClock.sleep(map(ms), signal)) };
}

const base = { env: childEnv({ PATH: process.env.PATH }), cwd: process.cwd(), timeoutMs: 60_000 };

describe("runCommand", () => {
  it("runs an argv without a shell, captures stdout and stderr together, reports the exit code", async () => {
    const r = await runCommand({ ...base, clock: clock(), argv: ["node", "-e", "console.log('out $HOME'); console.error('err'); process.exit(3)"] });
    expect(r).toMatchObject({ ok: false, code: 3, signal: null, timedOut: false });
    expect(r.output.text).toContain("out $HOME");
    expect(r.output.text).toContain("err");
    const ok = await runCommand({ ...base, clock: clock(), argv: ["true"] });
    expect(ok).toMatchObject({ ok: true, code: 0 });
  });

  it("caps the captured output and says it was truncated", async () => {
    const r = await runCommand({ ...base, clock: clock(), maxCapture: 100, argv: ["node", "-e", "process.stdout.write('x'.repeat(5000))"] });
    expect(r.ok).toBe(true);
    expect(r.output.text).toBe("x".repeat(100));
    expect(r.output.truncated).toBe(true);
  });

  it("gives the child only the environment it is handed; childEnv drops VAULT_*", async () => {
    const env = childEnv({ PATH: process.env.PATH, VAULT_TOKEN: "hvs.secret", KEEP: "1" }, { EXTRA: "2" });
    expect(env).toEqual({ PATH: process.env.PATH, KEEP: "1", EXTRA: "2" });
    const r = await runCommand({ ...base, env, clock: clock(), argv: ["node", "-e", "console.log(Object.keys(process.env).filter((k) => /^(VAULT_|KEEP|EXTRA)/.test(k)).sort().join(','))"] });
    expect(r.output.text.trim()).toBe("EXTRA,KEEP");
  });

  it("a timeout (through the given clock) sends SIGTERM to the process group", async () => {
    const c = clock((ms) => (ms === 1234 ? 50 : ms));
    const r = await runCommand({ ...base, timeoutMs: 1234, clock: c, argv: ["node", "-e", "setInterval(() => 0, 1000)"] });
    expect(r).toMatchObject({ ok: false, timedOut: true, signal: "SIGTERM" });
    expect(c.sleeps[0]).toBe(1234);
    expect(describeEnd(r, "1.234s")).toBe("timed out after 1.234s and was stopped (SIGTERM)");
  });

  it("one that ignores SIGTERM gets SIGKILL after the grace", async () => {
    const c = clock((ms) => (ms === 1000 ? 100 : ms === KILL_GRACE_MS ? 100 : ms));
    const r = await runCommand({ ...base, timeoutMs: 1000, clock: c, argv: ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"] });
    expect(r).toMatchObject({ ok: false, timedOut: true, signal: "SIGKILL" });
    expect(c.sleeps).toEqual(expect.arrayContaining([1000, KILL_GRACE_MS]));
  });

  it("a command that cannot start is an error, not a throw", async () => {
    const r = await runCommand({ ...base, clock: clock(), argv: ["/nonexistent/cmd"] });
    expect(r).toMatchObject({ ok: false, error: "ENOENT" });
    expect(describeEnd(r, "30s")).toBe("could not start: ENOENT");
    expect(describeEnd({ ok: false, code: null, signal: "SIGSEGV", timedOut: false }, "30s")).toBe("was killed by SIGSEGV");
    expect(describeEnd({ ok: false, code: 2, signal: null, timedOut: false }, "30s")).toBe("failed with exit code 2");
  });
});
