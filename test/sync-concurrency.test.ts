/**
 * The compare-and-write phase of a sync runs `vault.concurrency` outputs at a time, and its logs,
 * plan, summary and state come out in layout order whatever order the outputs finish in.
 *
 * In-process `runSync` against the Vault double over real HTTP (node-vault untouched), real files.
 * The writer module is wrapped (its real functions still do the work) to count the operations in
 * flight and to hold chosen ones back: no wall clock, only event-loop turns.
 */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { Writable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { systemClock } from "../src/core/support/clock.js";
import { createLogger } from "../src/core/support/log.js";
import { Redactor } from "../src/core/support/redact.js";
import type { SyncResult } from "../src/core/sync/result.js";
import { runSync } from "../src/core/sync/sync.js";
import { APP_POLICY, PKI_LEASE_RULES, baseLayout, trackedTrees } from "./helpers.js";
import type { Tree } from "./helpers.js";
import type * as Writer from "../src/core/fs/writer.js";

/** What the wrapped writer reports, and lets a test delay: `hold` runs before the real call. */
const seam = vi.hoisted(() => ({
  hold: undefined as undefined | ((op: "read" | "write", file: string) => Promise<void>),
  events: [] as string[],
  inFlight: { read: 0, write: 0 },
  max: { read: 0, write: 0 },
  ended: { read: 0, write: 0 },
  /** Called after each operation ends. */
  onEnd: [] as Array<() => void>,
}));

vi.mock("../src/core/fs/writer.js", async (importActual) => {
  const real = await importActual<typeof Writer>();
  const track = async <T>(op: "read" | "write", file: string, call: () => Promise<T>): Promise<T> => {
    seam.inFlight[op]++;
    seam.max[op] = Math.max(seam.max[op], seam.inFlight[op]);
    seam.events.push(`${op}-start ${file}`);
    try {
      await seam.hold?.(op, file);
      return await call();
    } finally {
      seam.inFlight[op]--;
      seam.ended[op]++;
      seam.events.push(`${op}-end ${file}`);
      for (const f of seam.onEnd) f();
    }
  };
  return {
    ...real,
    readCurrent: (file: string) => track("read", path.basename(file), () => real.readCurrent(file)),
    writeInTree: (...a: Parameters<typeof real.writeInTree>) => track("write", path.basename(a[1]), () => real.writeInTree(...a)),
    writePrivate: (...a: Parameters<typeof real.writePrivate>) => {
      if (path.basename(a[0]) === "commit-journal.json") seam.events.push("journal");
      return real.writePrivate(...a);
    },
  };
});

const tree = trackedTrees(afterEach);
const N = 20;
const name = (i: number) => `f${String(i).padStart(2, "0")}.txt`;

/** N raw outputs in two directories that do not exist yet (made by the workers, concurrently). */
function layout(opts: { concurrency?: number; pkiAt?: number } = {}): Record<string, unknown> {
  const outputs: unknown[] = [];
  for (let i = 0; i < N; i++) {
    if (i === opts.pkiAt) outputs.push({ format: "pki", dir: "certs/web", mount: "pki_int", role: "web", commonName: "web.home.arpa", ttl: "72h", renewBefore: "1h" });
    outputs.push({ file: `${i % 2 ? "a/b" : "a/c"}/${name(i)}`, format: "raw", value: `app.k${i}` });
  }
  return baseLayout({ ...(opts.concurrency ? { vault: { concurrency: opts.concurrency } } : {}), outputs });
}

async function seeded(opts: { concurrency?: number; pkiAt?: number } = {}): Promise<Tree> {
  const t = await tree({ policy: APP_POLICY + PKI_LEASE_RULES });
  if (opts.pkiAt !== undefined) {
    t.double.mountPki("pki_int");
    t.double.addPkiRole("pki_int", "web", { allowedDomains: ["home.arpa"], allowSubdomains: true, maxTtl: 30 * 86400 });
  }
  put(t, "v1");
  await t.writeLayout(layout(opts));
  return t;
}

function put(t: Tree, gen: string) {
  t.double.kvPut("secret", "app", Object.fromEntries(Array.from({ length: N }, (_, i) => [`k${i}`, `${gen}-value-${i}`])));
}

/** One in-process `sync -v` (or `sync --dry-run`), as the CLI builds it; its log and printed lines. */
async function sync(t: Tree, dryRun = false): Promise<{ r: SyncResult; log: string[]; printed: string[] }> {
  const redactor = new Redactor();
  let text = "";
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString("utf8");
      cb();
    },
  });
  const printed: string[] = [];
  const r = await runSync({
    layoutFile: t.layoutFile,
    env: { VAULT_ADDR: t.double.url },
    dryRun,
    lockTimeoutMs: 30_000,
    log: createLogger({ level: "info", format: "pretty", out: sink, redactor }),
    redactor,
    clock: systemClock,
    print: (l) => printed.push(l),
  });
  return { r, log: text.split("\n").filter(Boolean), printed };
}

/**
 * Resolves once `done()` holds after an operation ended (a pass that never lets it hold fails
 * on the test's timeout).
 */
function afterEnds(done: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    if (done()) return resolve();
    seam.onEnd.push(() => {
      if (done()) resolve();
    });
  });
}

/** Resolves once `done()` holds, looking again after each event-loop turn; gives up after `turns`. */
async function until(done: () => boolean, turns = 200): Promise<void> {
  for (let i = 0; i < turns && !done(); i++) await new Promise((resolve) => setImmediate(resolve));
}

const files = Array.from({ length: N }, (_, i) => `${i % 2 ? "a/b" : "a/c"}/${name(i)}`);

beforeEach(() => {
  seam.hold = undefined;
  seam.events = [];
  seam.inFlight = { read: 0, write: 0 };
  seam.max = { read: 0, write: 0 };
  seam.ended = { read: 0, write: 0 };
  seam.onEnd = [];
});

describe("compare and write, vault.concurrency at a time", () => {
  for (const concurrency of [undefined, 3]) {
    it(`a no-op sync compares ${concurrency ?? "8 (the default)"} outputs at a time, never more`, async () => {
      const limit = concurrency ?? 8;
      const t = await seeded({ concurrency });
      expect((await sync(t)).r.exit).toBe(0);
      seam.max = { read: 0, write: 0 };
      let started = 0;
      // Each compare waits until `limit` are in flight (or every output has started): a serial
      // pass never gets there and is let go after the turns run out, with a max of 1.
      seam.hold = async (op) => {
        if (op !== "read") return;
        started++;
        await until(() => seam.inFlight.read >= limit || started === N);
      };
      const { r, log } = await sync(t);
      expect(r.exit).toBe(0);
      expect(seam.max.read).toBe(limit);
      expect(seam.max.write).toBe(0);
      expect(log.at(-1)).toMatch(new RegExp(`sync: 0 created, 0 updated, 0 deleted, ${N} unchanged, 0 failed`));
    });
  }

  it("logs, results, summary and state keep layout order when the first output finishes last", async () => {
    const prevUmask = process.umask(0o077);
    try {
      const t = await seeded();
      // The first output's write waits until every other write has finished.
      seam.hold = async (op, file) => {
        if (op === "write" && file === name(0)) await afterEnds(() => seam.ended.write === N - 1);
      };
      const { r, log } = await sync(t);
      expect(r.exit).toBe(0);
      const writeEnds = seam.events.filter((e) => e.startsWith("write-end ")).map((e) => e.slice("write-end ".length));
      expect(writeEnds.at(-1)).toBe(name(0)); // finished last
      expect(writeEnds).not.toEqual(Array.from({ length: N }, (_, i) => name(i)));
      expect(seam.max.write).toBeGreaterThan(1);
      expect(seam.max.write).toBeLessThanOrEqual(8);
      expect(r.results.map((x) => `${x.action} ${x.file}`)).toEqual(files.map((f) => `create ${f}`));
      expect(log.filter((l) => !/logged in with AppRole/.test(l))).toEqual([...files.map((f) => expect.stringMatching(new RegExp(`^vault-render: create +${f}  `)) as unknown as string), expect.stringMatching(/^vault-render: sync: 20 created, 0 updated, 0 deleted, 0 unchanged, 0 failed/) as unknown as string]);
      const state = JSON.parse(await readFile(path.join(t.agentDir, "state.json"), "utf8")) as { outputs: Record<string, unknown> };
      expect(Object.keys(state.outputs)).toEqual(files);
      // Directories made by several workers at once: 0755 whatever the umask, files 0644.
      for (const d of ["a", "a/b", "a/c"]) expect((await stat(path.join(t.publicDir, d))).mode & 0o7777).toBe(0o755);
      for (const f of files) expect((await stat(path.join(t.publicDir, f))).mode & 0o7777).toBe(0o644);
      for (const [i, f] of files.entries()) expect(await readFile(path.join(t.publicDir, f), "utf8")).toBe(`v1-value-${i}`);
    } finally {
      process.umask(prevUmask);
    }
  });

  it("a dry run prints its plan in layout order when the first output finishes last", async () => {
    const t = await seeded();
    expect((await sync(t)).r.exit).toBe(0);
    put(t, "v2");
    seam.max = { read: 0, write: 0 };
    seam.ended = { read: 0, write: 0 };
    seam.hold = async (op, file) => {
      if (op === "read" && file === name(0)) await afterEnds(() => seam.ended.read === N - 1);
    };
    const { r, printed } = await sync(t, true);
    expect(r.exit).toBe(0);
    expect(seam.events.filter((e) => e.startsWith("read-end ")).at(-1)).toBe(`read-end ${name(0)}`);
    expect(printed).toEqual([...files.map((f) => expect.stringMatching(new RegExp(`^update +${f}  `)) as unknown as string), "plan: 0 created, 20 updated, 0 deleted, 0 unchanged, 0 failed (dry run: nothing written)"]);
    expect(seam.max.write).toBe(0);
  });

  it("a certificate set between file outputs commits alone: the outputs before it are done, those after it not started", async () => {
    const pkiAt = 10;
    const t = await seeded({ pkiAt });
    const { r } = await sync(t);
    expect(r.exit).toBe(0);
    const j = seam.events.indexOf("journal");
    expect(j).toBeGreaterThan(0);
    expect(seam.events.lastIndexOf("journal")).toBe(j);
    const at = (i: number) => seam.events.flatMap((e, k) => (e.endsWith(` ${name(i)}`) ? [k] : []));
    for (let i = 0; i < N; i++) for (const k of at(i)) expect([name(i), i < pkiAt ? k < j : k > j]).toEqual([name(i), true]);
    expect(seam.max.write).toBeGreaterThan(1);
    expect(r.results.map((x) => x.file)).toEqual([...files.slice(0, pkiAt), ...["cert.pem", "key.pem", "ca.pem", "fullchain.pem"].map((p) => `certs/web/${p}`), ...files.slice(pkiAt)]);
  });
});
