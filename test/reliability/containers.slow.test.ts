/**
 * The lock across containers, the long case (docs/operations.md "The lock in containers"): a
 * live holder in a container keeps the lock through a hook that outlasts the staleness bound
 * (STALE_MS + 5 s, about 25 s), and no waiter, on the host or in another container, breaks it.
 * Needs root and unshare (skipped otherwise).
 */
import { describe, expect, it } from "vitest";
import { STALE_MS } from "../../src/core/fs/lock.js";
import { canUnshare, cleanAfterEach, consistent, inContainer, setup, waitForLock } from "./containers-fixture.js";
import { scaled } from "./support.js";

cleanAfterEach();

describe.runIf(canUnshare)("the lock across containers", () => {
  it("a live holder in another container is never broken, even while it holds the lock longer than the staleness bound (its heartbeat runs)", async () => {
    // The pass holds the lock through a hook that outlasts the bound.
    const hookSec = Math.ceil(STALE_MS / 1000) + 5;
    const t = await setup({ command: ["sleep", String(hookSec)], timeout: `${hookSec + 30}s` });
    t.double.kvPut("secret", "app", { password: "v3" });
    const holder = inContainer(t, "ctr-holder", ["sync"]);
    const info = await waitForLock(t);
    expect(info).toMatchObject({ pid: 1, host: "ctr-holder" });
    // Waiters on the host and in another container (pid 1 there too), the long one outwaiting the holder.
    const short = await Promise.all([t.run(["sync", "--lock-timeout", "300ms"]), inContainer(t, "ctr-other", ["sync", "--lock-timeout", "300ms"]).done]);
    expect(short.map((r) => r.code)).toEqual([4, 4]);
    const long = inContainer(t, "ctr-waiter", ["sync", "-v", "--lock-timeout", `${hookSec + 60}s`]);
    const held = await holder.done;
    expect({ code: held.code, signal: held.signal, stderr: held.stderr }).toEqual({ code: 0, signal: null, stderr: "" });
    const waited = await long.done;
    expect(waited.code).toBe(0);
    // It waited for the live holder, and never judged its lock stale.
    expect(waited.stderr).toMatch(/waiting for the lock held by pid 1 on ctr-holder \(sync, since /);
    expect(waited.stderr).not.toMatch(/removed the stale lock/);
    await consistent(t, "v3");
  }, scaled(120_000));
});
