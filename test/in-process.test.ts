/**
 * The in-process test level (test/support/in-process.ts) is the CLI a process runs: the same
 * result as the built CLI for the same argv, and nothing left behind in the test's process between
 * runs (signal handlers, open handles, umask, cwd), even for watch.
 */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { runCli, runInProcess, scaled, trackedTrees } from "./helpers.js";

const tree = trackedTrees(afterEach);

/** Each of `after` is in `before` (as a multiset): nothing new is open. */
function added(before: string[], after: string[]): string[] {
  const left = [...before];
  return after.filter((r) => {
    const i = left.indexOf(r);
    if (i < 0) return true;
    left.splice(i, 1);
    return false;
  });
}

async function until(what: string, fn: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + scaled(10_000);
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("runInProcess", () => {
  it("gives what the built CLI gives: a sync, an unchanged second sync, a usage error, an invalid layout", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "pw-1" });
    const env = { VAULT_ADDR: t.double.url };
    const layout = ["--layout", t.layoutFile];
    const first = await runInProcess([...layout, "sync", "-v"], { env });
    expect(first).toMatchObject({ code: 0, signal: null, stdout: "" });
    expect(first.stderr).toMatch(/create +app\.env/);
    for (const args of [[...layout, "sync", "-v"], [...layout, "no-such-command"], [...layout, "sync", "--lock-timeout", "soon"], ["--layout", path.join(t.dir, "missing.json"), "sync"]]) {
      const a = await runInProcess(args, { env });
      const b = await runCli(args, { env, cwd: t.dir });
      // Timestamps and durations aside (none in these lines), the same bytes.
      expect({ ...a, stderr: a.stderr.replace(/\d+ ?ms/g, "N ms") }).toEqual({ ...b, stderr: b.stderr.replace(/\d+ ?ms/g, "N ms") });
    }
    expect(await readFile(path.join(t.publicDir, "app.env"), "utf8")).toBe("DB_PASSWORD='pw-1'\n");
  });

  it("restores the umask and leaves no signal handler or open handle behind, even after two watch runs", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "p" });
    const umask = process.umask();
    const signals = ["SIGTERM", "SIGINT", "SIGHUP"].map((s) => process.listenerCount(s));
    const before = process.getActiveResourcesInfo();
    expect((await t.run(["sync"], { umask: "077" })).code).toBe(0);
    expect(process.umask()).toBe(umask);
    for (let round = 1; round <= 2; round++) {
      const run = runInProcess(["--layout", t.layoutFile, "watch", "--heal-interval", "200ms", "--debounce", "50ms"], { env: { VAULT_ADDR: t.double.url } });
      // The watch is up (its handler listens) and has passed once (state.json written by it).
      await until("the watch to listen", () => Promise.resolve(process.listenerCount("SIGTERM") === (signals[0] as number) + 1));
      await until("a pass", async () => (await stat(path.join(t.agentDir, "state.json")).catch(() => null)) !== null);
      process.emit("SIGTERM");
      const r = await run;
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/watch stopped after \d+ pass/);
    }
    expect(["SIGTERM", "SIGINT", "SIGHUP"].map((s) => process.listenerCount(s))).toEqual(signals);
    // Closed sockets and watchers go on the next turns of the loop.
    await until("handles to close", () => Promise.resolve(added(before, process.getActiveResourcesInfo()).length === 0));
  });
});
