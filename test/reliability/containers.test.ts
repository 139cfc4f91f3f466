/**
 * The lock across containers (docs/operations.md "The lock in containers"): runs of the real CLI
 * in their own pid and UTS namespaces (`unshare`, as Docker gives each container), sharing one
 * tree. A recreated container has another host name, a restarted one reuses pids (pid 1 again):
 * neither may keep a dead holder's lock for ever, and a live holder elsewhere is never broken.
 * Needs root and unshare (skipped otherwise). The live holder that outlasts the staleness bound
 * (20 s and more by design) is in containers.slow.test.ts.
 */
import { readlink } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { ageLock, canUnshare, cleanAfterEach, consistent, inContainer, killContainer, setup, waitForLock } from "./containers-fixture.js";
import { scaled } from "./support.js";

cleanAfterEach();

describe.runIf(canUnshare)("the lock across containers", () => {
  it("(a) a holder killed -9 in a container with another host name: its lock is respected while its heartbeat is fresh, broken once it is older than the bound", async () => {
    const t = await setup();
    t.double.kvPut("secret", "app", { password: "v1" });
    t.double.setLatency(3000);
    const holder = inContainer(t, "ctr-gone", ["sync"]);
    const info = await waitForLock(t);
    expect(info).toMatchObject({ pid: 1, host: "ctr-gone" });
    expect(info.pidns).not.toBe(await readlink("/proc/self/ns/pid"));
    killContainer(holder);
    expect((await holder.done).code).not.toBe(0);
    t.double.setLatency(0);
    const early = await t.run(["sync", "--lock-timeout", "300ms"]);
    expect(early.code).toBe(4);
    expect(early.stderr).toMatch(/holds .*lock: pid 1 on ctr-gone \(sync, since .*\); gave up after 300ms/);
    await ageLock(t);
    const r = await t.run(["sync", "-v"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/removed the stale lock of pid 1 on ctr-gone \(sync, since .*\): no heartbeat for 2\ds/);
    await consistent(t, "v1");
  }, scaled(60_000));

  it("(b) a restarted container whose new run gets the dead holder's pid (pid 1 again, same host name): not mistaken for a live holder: broken at once (its pid namespace number reused, pid 1 now another process) or once its heartbeat is older than the bound", async () => {
    const t = await setup();
    t.double.kvPut("secret", "app", { password: "v2" });
    t.double.setLatency(3000);
    const holder = inContainer(t, "ctr-app", ["sync"]);
    expect(await waitForLock(t)).toMatchObject({ pid: 1, host: "ctr-app" });
    killContainer(holder);
    expect((await holder.done).code).not.toBe(0);
    t.double.setLatency(0);
    // The restarted container's run is pid 1, as the dead holder was. If the kernel gave the new
    // pid namespace the dead one's number, the lock's pid is looked up here: pid 1 is this run,
    // with another start time, so the lock is stale at once. Otherwise its heartbeat decides.
    let r = await inContainer(t, "ctr-app", ["sync", "-v", "--lock-timeout", "300ms"]).done;
    if (r.code === 4) {
      console.log("containers: the restarted container got a new pid namespace number: the heartbeat decides");
      await ageLock(t);
      r = await inContainer(t, "ctr-app", ["sync", "-v", "--lock-timeout", "300ms"]).done;
      expect(r.stderr).toMatch(/removed the stale lock of pid 1 \(sync, since .*\): no heartbeat for 2\ds/);
    } else {
      console.log("containers: the restarted container reused the pid namespace number: pid and start time decide");
      expect(r.stderr).toMatch(/removed the stale lock of pid 1 \(sync, since .*\): pid 1 is another process now/);
    }
    expect(r.code).toBe(0);
    await consistent(t, "v2");
  }, scaled(60_000));
});
