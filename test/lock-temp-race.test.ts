/**
 * A holder in another pid namespace cannot see a waiter's pid, so its clean-up of stale temps in
 * agent-only/ can remove the waiter's lock temp between its creation and the link. Found in CI
 * (a host waiter exited 5, "cannot create the lock: ENOENT", instead of 4): the waiter must write
 * a new temp and try again. node:fs/promises' link is wrapped to remove the temp first, `removals` times.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import type * as realFs from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

const race = vi.hoisted(() => ({ removals: 0, links: 0 }));
vi.mock("node:fs/promises", async (importOriginal) => {
  const real = await importOriginal<typeof realFs>();
  return {
    ...real,
    link: async (from: string, to: string) => {
      race.links++;
      if (race.removals > 0) {
        race.removals--;
        await real.unlink(from);
      }
      return real.link(from, to);
    },
  };
});

const { Lock, processAlive } = await import("../src/core/fs/lock.js");
const { VrError } = await import("../src/core/support/errors.js");

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "vr-lock-race-"));
  race.links = 0;
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const deps = { now: () => Date.now(), sleep: () => Promise.resolve(), isAlive: processAlive };

describe("the lock's temp removed under it", () => {
  it("is written again and the lock is taken (no exit 5), with no temp left", async () => {
    race.removals = 2;
    const lock = await Lock.acquire(path.join(dir, "lock"), "sync", 0, deps);
    expect(race.links).toBe(3);
    expect((await readdir(dir)).sort()).toEqual(["lock"]);
    await lock.release();
    expect(await readdir(dir)).toEqual([]);
  });

  it("three removals in a row are reported as such (exit 5), nothing left behind", async () => {
    race.removals = 3;
    const err = await Lock.acquire(path.join(dir, "lock"), "sync", 0, deps).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VrError);
    expect((err as InstanceType<typeof VrError>).message).toMatch(/temp file was removed three times/);
    expect((err as InstanceType<typeof VrError>).exit).toBe(5);
    expect(await readdir(dir)).toEqual([]);
  });
});
