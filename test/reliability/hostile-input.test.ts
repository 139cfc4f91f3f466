/**
 * Hostile input (docs/reliability.md §6). The layout fuzz runs 1,000+ mutated and random
 * documents in-process through the function the CLI uses (resolveLayoutText), and a sample
 * through the CLI (in-process: argv → main, as the bin runs it); then path tricks, the dotenv corpus in every format, a 10 MB secret,
 * binary values, bad key names and duplicate outputs, end to end.
 */
import { lstat, mkdir, readFile, readdir, stat, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { VrError } from "../../src/core/support/errors.js";
import { resolveLayoutText } from "../../src/core/layout/load.js";
import { baseLayout, makeTree } from "../helpers.js";
import type { Tree } from "../helpers.js";
import { STACK_RE, budget, rng, scaled, size } from "./support.js";

let trees: Tree[] = [];
afterEach(async () => {
  await Promise.all(trees.map((x) => x.cleanup()));
  trees = [];
});
async function tree(): Promise<Tree> {
  const t = await makeTree({ mode: "in-process" });
  trees.push(t);
  return t;
}

// --- the fuzzer ------------------------------------------------------------------------------

const VALID = {
  version: 1,
  vault: { address: "https://vault.example:8200", timeout: "5s", retries: 2, concurrency: 4 },
  auth: { approle: { roleIdFile: "approle/role_id", secretIdFile: "approle/secret_id", roleName: "app" } },
  paths: { public: "public", agentOnly: "agent-only" },
  sources: {
    app: { type: "kv", mount: "secret", path: "app" },
    gen: { type: "kv", mount: "secret", path: "gen", kvVersion: 2, generate: { key: "password", length: 32 } },
    db: { type: "lease", path: "database/creds/app", renewBefore: "10m" },
    misc: { type: "read", path: "cubbyhole/x" },
  },
  hooks: { reload: { command: ["docker", "restart", "app"], timeout: "30s" } },
  outputs: [
    { file: "app.env", format: "env", dialect: "compose", keys: { A: "app.a" }, from: [{ source: "app", prefix: "APP_" }], hooks: ["reload"] },
    { file: "pw", format: "raw", value: "app.password", decode: "base64", newline: true },
    { file: "conf/app.json", format: "json", keys: { user: "db.username" } },
    { file: "t.conf", format: "template", inline: "{{ misc.k }}" },
    { format: "pki", dir: "certs/web", mount: "pki", role: "web", commonName: "web.example", ttl: "72h", renewBefore: 0.3, files: { ca: null } },
  ],
};

const NASTY: unknown[] = [
  null, true, false, 0, -1, 1.5, 1e308, -0, "", " ", "x", "..", "../x", "/etc/passwd", "a\nb", "a\u0000b", "é", "\u202e", "💥",
  "x".repeat(5000), "a/".repeat(600) + "b", "10", "10q", "-5s", "1h30m", "0.5", "https://", "http://[::1", "ftp://x", [], [1], [null], {}, { a: 1 },
  { __proto__: { polluted: true } }, { constructor: 1 }, ["docker"], "{{", "}}", "{{ a.b | nope }}", "a.b", ".a", "a.", "a..b", "$", "$.x",
];

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** Every path (array of keys) to a value inside doc. */
function paths(doc: Json, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [prefix];
  if (Array.isArray(doc)) doc.forEach((v, i) => out.push(...paths(v, [...prefix, i])));
  else if (doc !== null && typeof doc === "object") for (const [k, v] of Object.entries(doc)) out.push(...paths(v, [...prefix, k]));
  return out;
}

function mutate(doc: Json, r: () => number): Json {
  const pick = <T>(a: T[]): T => a[Math.floor(r() * a.length)] as T;
  const d = clone(doc);
  const n = 1 + Math.floor(r() * 3);
  let root: Json = d;
  for (let i = 0; i < n; i++) {
    const p = pick(paths(root));
    if (p.length === 0) {
      if (r() < 0.1) root = clone(pick(NASTY) as Json);
      continue;
    }
    const parentPath = p.slice(0, -1);
    let parent: Json = root;
    for (const k of parentPath) parent = (parent as Record<string, Json>)[k as string] as Json;
    const key = p[p.length - 1] as string | number;
    const container = parent as Record<string | number, Json>;
    const op = r();
    if (op < 0.3) container[key] = clone(pick(NASTY) as Json);
    else if (op < 0.45) {
      if (Array.isArray(container)) container.splice(key as number, 1);
      else delete container[key];
    } else if (op < 0.6 && !Array.isArray(container)) container[pick(["extra", "files", "dialect", "value", "keys", "type", "mount", "kvVersion", "version", "generate"])] = clone(pick(NASTY) as Json);
    else if (op < 0.75 && Array.isArray(container)) container.push(clone(pick(container.length ? container : [null])));
    else if (op < 0.9) {
      const v = container[key];
      if (typeof v === "string") container[key] = v + pick(["/..", "\n", "\u0000", "x".repeat(300), " | json", "}}", "../"]);
      else if (typeof v === "number") container[key] = pick([-1, 0, 65, 1e9, 0.5, NaN]);
      else container[key] = clone(pick(NASTY) as Json);
    } else {
      // Duplicate an output with a path that normalises to the same file.
      const outs = (root as { outputs?: Json[] })?.outputs;
      if (Array.isArray(outs) && outs.length) {
        // An earlier mutation may have replaced the output with null, a number or an array.
        const o = clone(outs[0] as Json) as Record<string, Json> | null;
        if (o !== null && typeof o === "object" && !Array.isArray(o) && typeof o.file === "string") {
          o.file = pick([`./${o.file}`, `${o.file}`, `a/../${o.file}`, `${o.file}/`]);
        }
        outs.push(o);
      }
    }
  }
  return root;
}

function randomJson(r: () => number, depth = 0): Json {
  const t = r();
  if (depth > 3 || t < 0.3) return NASTY[Math.floor(r() * NASTY.length)] as Json;
  if (t < 0.6) return Array.from({ length: Math.floor(r() * 4) }, () => randomJson(r, depth + 1));
  const o: Record<string, Json> = {};
  const keys = ["version", "vault", "auth", "sources", "outputs", "paths", "hooks", "file", "format", "x"];
  for (let i = 0; i < Math.floor(r() * 5); i++) o[keys[Math.floor(r() * keys.length)] as string] = randomJson(r, depth + 1);
  return o;
}

const ABS = "/srv/vault/vault-layout.json";
const LINE_RE = /^\/srv\/vault\/vault-layout\.json: \$[^\n:]*: [^\n]+$/;

/** What the CLI does with a layout text: valid, or exit 2 with one `file: $.path: message` line per issue. */
function judge(text: string): { ok: true } | { ok: false; lines: string[] } {
  try {
    resolveLayoutText(ABS, text, {});
    return { ok: true };
  } catch (e) {
    if (!(e instanceof VrError)) throw new Error(`not a VrError (the CLI would print "internal error", exit 1): ${String(e)}\n${text}`);
    if (e.exit !== 2) throw new Error(`exit ${e.exit} instead of 2 (${e.code}: ${e.message})\n${text}`);
    return { ok: false, lines: e.message.split("\n") };
  }
}

describe("layout fuzz", () => {
  const N = size(1_500, 20_000);
  it(`${N} mutated and random documents: each valid, or exit 2 with one line per problem naming a $.path`, () => {
    const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1e9);
    const r = rng(seed);
    expect(judge(JSON.stringify(VALID))).toEqual({ ok: true });
    let invalid = 0;
    let issues = 0;
    for (let i = 0; i < N; i++) {
      const doc = i % 5 === 4 ? randomJson(r) : mutate(VALID as unknown as Json, r);
      let text = JSON.stringify(doc) ?? "null";
      if (i % 50 === 49) text = text.slice(0, Math.floor(r() * text.length)); // truncated JSON
      const v = judge(text);
      if (v.ok) continue;
      invalid++;
      for (const l of v.lines) {
        issues++;
        if (!LINE_RE.test(l)) throw new Error(`seed ${seed} doc ${i}: not one "file: $.path: message" line: ${JSON.stringify(l)}\n${text}`);
        expect(l).not.toMatch(STACK_RE);
      }
    }
    console.log(`fuzz: ${N} documents (seed ${seed}): ${invalid} invalid with ${issues} issue lines, ${N - invalid} valid`);
    expect(invalid).toBeGreaterThanOrEqual(1000);
  }, budget(60_000, 600_000));

  it(`a sample of ${size(30, 200)} invalid documents through the CLI (argv → main, in-process): exit 2, no stack trace, nothing written`, async () => {
    const t = await tree();
    const r = rng(42);
    let done = 0;
    for (let i = 0; done < size(30, 200) && i < 10_000; i++) {
      const doc = mutate(baseLayout() as unknown as Json, r);
      const text = JSON.stringify(doc) ?? "null";
      if (judge(text).ok) continue;
      done++;
      await writeFile(t.layoutFile, text);
      const res = await t.run(["sync", "-v"]);
      expect({ i, code: res.code }).toEqual({ i, code: 2 });
      expect(res.stderr).not.toMatch(STACK_RE);
      for (const l of res.stderr.trim().split("\n")) expect(l).toMatch(/^vault-render: .*(\$[^\n:]*: |VAULT_|Vault address)/);
      await expect(stat(t.publicDir)).rejects.toThrow(/ENOENT/);
      expect(await readdir(t.agentDir)).toEqual(["approle"]);
    }
    expect(t.double.requests.length).toBe(0);
  }, budget(60_000, 300_000));
});

// --- path tricks and values ---------------------------------------------------------------------

describe("path tricks", () => {
  it.each([
    ["..", "../escape", /must not contain "\." or "\.\." segments/],
    ["a/../../b", "a/../../b", /must not contain "\." or "\.\." segments/],
    ["absolute", "/etc/cron.d/x", /must be relative/],
    ["a newline", "a\nb", /must not contain control characters/],
    ["a NUL", "a\u0000b", /must not contain control characters/],
    ["a 300-byte name", "x".repeat(300), /has a path segment longer than 255 bytes/],
    ["a 1100-byte path", "abcdefghi/".repeat(110) + "x", /is longer than 1024 bytes|at most 1024 characters/],
    ["our temp prefix", ".vault-render.tmp-1-x", /reserved prefix/],
    ["a backslash", "a\\..\\b", /must use \/ as separator/],
  ])("%s: exit 2 naming $.outputs[0].file, nothing written", async (_n, file, msg) => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "p" });
    await t.writeLayout(baseLayout({ outputs: [{ file, format: "raw", value: "app.password" }] }));
    const r = await t.run(["sync"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/\$\.outputs\[0\]\.file: /);
    expect(r.stderr).toMatch(msg);
    await expect(stat(t.publicDir)).rejects.toThrow(/ENOENT/);
  });

  it("duplicate output paths (a/./b vs a/b, a PKI file vs a file): exit 2 naming both", async () => {
    const t = await tree();
    await t.writeLayout(baseLayout({ outputs: [{ file: "a/b", format: "raw", value: "app.password" }, { file: "a/./b", format: "raw", value: "app.password" }] }));
    let r = await t.run(["sync"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/\$\.outputs\[1\]\.file: (duplicate output file "a\/b" \(also \$\.outputs\[0\]\)|must not contain "\." or "\.\." segments)/);
    await t.writeLayout(baseLayout({ outputs: [{ file: "certs/cert.pem", format: "raw", value: "app.password" }, { format: "pki", dir: "certs", mount: "pki", role: "r", commonName: "x" }] }));
    r = await t.run(["sync"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/\$\.outputs\[1\]\.dir: duplicate output file "certs\/cert\.pem" \(also \$\.outputs\[0\]\)/);
  });

  it("a symlinked directory and a symlink planted at a target are refused (exit 1), never followed", async () => {
    const t = await tree();
    t.double.kvPut("secret", "app", { password: "p" });
    await t.writeLayout(baseLayout({ outputs: [{ file: "app.env", format: "env", keys: { P: "app.password" } }, { file: "linked/x", format: "raw", value: "app.password" }, { file: "planted", format: "raw", value: "app.password" }] }));
    await mkdir(t.publicDir);
    const outside = path.join(t.dir, "outside");
    await mkdir(outside);
    await writeFile(path.join(outside, "victim"), "keep");
    await symlink(outside, path.join(t.publicDir, "linked"));
    await symlink(path.join(outside, "victim"), path.join(t.publicDir, "planted"));
    const r = await t.run(["sync"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refusing to write through the symlinked directory .*linked/);
    expect(r.stderr).toMatch(/refusing to replace the symlink at .*planted/);
    expect(await readdir(outside)).toEqual(["victim"]);
    expect(await readFile(path.join(outside, "victim"), "utf8")).toBe("keep");
    expect((await lstat(path.join(t.publicDir, "planted"))).isSymbolicLink()).toBe(true);
    expect(await readFile(path.join(t.publicDir, "app.env"), "utf8")).toBe("P='p'\n");
  });
});

interface CorpusValue {
  id: string;
  value: string;
  portable: "round-trip" | "refuse";
}

describe("hostile values", () => {
  it("the dotenv corpus in every format: raw and json byte-exact; env dialects write or refuse by key, never printing a value", async () => {
    const corpus = (JSON.parse(await readFile(path.join(__dirname, "..", "dotenv", "corpus.json"), "utf8")) as { values: CorpusValue[] }).values;
    const t = await tree();
    const data = Object.fromEntries(corpus.map((c, i) => [`K${i}`, c.value]));
    t.double.kvPut("secret", "corpus", data);
    const outputs: unknown[] = [{ file: "all.json", format: "json", from: ["c"] }];
    corpus.forEach((_c, i) => outputs.push({ file: `raw/${i}`, format: "raw", value: `c.K${i}` }));
    corpus.forEach((_c, i) => outputs.push({ file: `tmpl/${i}`, format: "template", inline: `{{ c.K${i} | json }}` }));
    const dialects = ["portable", "compose", "dotenv", "python-dotenv", "posix", "sh", "systemd"];
    for (const d of dialects) corpus.forEach((_c, i) => outputs.push({ file: `env/${d}/${i}.env`, format: "env", dialect: d, keys: { [`K${i}`]: `c.K${i}` } }));
    await t.writeLayout(baseLayout({ sources: { c: { type: "kv", mount: "secret", path: "corpus", kvVersion: 2 } }, outputs }));
    const r = await t.run(["sync"]);
    expect([0, 1]).toContain(r.code);
    expect(JSON.parse(await readFile(path.join(t.publicDir, "all.json"), "utf8"))).toEqual(Object.fromEntries(Object.keys(data).sort().map((k) => [k, data[k]])));
    for (const [i, c] of corpus.entries()) {
      // A lone surrogate cannot cross Vault's JSON-over-UTF-8 API: it arrives as U+FFFD.
      if (Buffer.from(c.value).toString() !== c.value) continue;
      expect(await readFile(path.join(t.publicDir, `raw/${i}`), "utf8")).toBe(c.value);
      expect(JSON.parse(await readFile(path.join(t.publicDir, `tmpl/${i}`), "utf8"))).toBe(c.value);
      const portable = await readFile(path.join(t.publicDir, `env/portable/${i}.env`), "utf8").catch(() => null);
      if (c.portable === "refuse") {
        expect({ id: c.id, written: portable !== null }).toEqual({ id: c.id, written: false });
        expect(r.stderr).toMatch(new RegExp(`env/portable/${i}\\.env: .*K${i}`));
      } else expect({ id: c.id, written: portable }).toEqual({ id: c.id, written: `K${i}='${c.value}'\n` });
    }
    for (const l of r.stderr.trim().split("\n").filter(Boolean)) {
      expect(l).toMatch(/^vault-render: error: env\/[a-z-]+\/\d+\.env: /);
      for (const c of corpus) if (c.value.length >= 6) expect(l).not.toContain(c.value);
    }
  }, scaled(30_000));

  it("a 10 MB secret: written byte-exact as raw, refused by name in a portable .env; binary values via base64", async () => {
    const t = await tree();
    const big = Buffer.alloc(10 * 1024 * 1024, "Z").toString("latin1");
    const bin = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    t.double.kvPut("secret", "big", { v: big, bin: bin.toString("base64"), badb64: "%%%not base64%%%" });
    await t.writeLayout(
      baseLayout({
        sources: { b: { type: "kv", mount: "secret", path: "big", kvVersion: 2 } },
        outputs: [
          { file: "big.raw", format: "raw", value: "b.v" },
          { file: "big.env", format: "env", keys: { BIG: "b.v" } },
          { file: "bin", format: "raw", value: "b.bin", decode: "base64" },
          { file: "bad.bin", format: "raw", value: "b.badb64", decode: "base64" },
          { file: "bin.json", format: "json", keys: { bin: "b.bin" } },
        ],
      }),
    );
    const r = await t.run(["sync"]);
    expect(r.code).toBe(1);
    expect((await stat(path.join(t.publicDir, "big.raw"))).size).toBe(10 * 1024 * 1024);
    expect((await readFile(path.join(t.publicDir, "big.raw"))).equals(Buffer.from(big, "latin1"))).toBe(true);
    expect((await readFile(path.join(t.publicDir, "bin"))).equals(bin)).toBe(true);
    await expect(stat(path.join(t.publicDir, "big.env"))).rejects.toThrow(/ENOENT/);
    expect(r.stderr).toMatch(/big\.env: .*BIG/);
    expect(r.stderr).toMatch(/bad\.bin: .*base64/);
    await expect(stat(path.join(t.publicDir, "bad.bin"))).rejects.toThrow(/ENOENT/);
    expect(r.stderr.length).toBeLessThan(2000);
    expect(r.stderr).not.toMatch(STACK_RE);
  }, scaled(30_000));

  it("key names that are not valid env names fail the .env output by name; json and templates carry them", async () => {
    const t = await tree();
    t.double.kvPut("secret", "odd", { "bad-name": "v1", "1abc": "v2", "with space": "v3", ok: "v4", "ünï": "v5" });
    await t.writeLayout(
      baseLayout({
        sources: { o: { type: "kv", mount: "secret", path: "odd", kvVersion: 2 } },
        outputs: [
          { file: "all.env", format: "env", from: ["o"] },
          { file: "ok.env", format: "env", keys: { OK: "o.ok" } },
          { file: "all.json", format: "json", from: ["o"] },
        ],
      }),
    );
    const r = await t.run(["sync"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/all\.env: .*(bad-name|1abc|with space|ünï)/);
    await expect(stat(path.join(t.publicDir, "all.env"))).rejects.toThrow(/ENOENT/);
    expect(await readFile(path.join(t.publicDir, "ok.env"), "utf8")).toBe("OK='v4'\n");
    expect(JSON.parse(await readFile(path.join(t.publicDir, "all.json"), "utf8"))).toMatchObject({ "bad-name": "v1", "1abc": "v2" });
    // An invalid env name in the layout's own keys is a layout error.
    await t.writeLayout(baseLayout({ outputs: [{ file: "x.env", format: "env", keys: { "BAD-NAME": "app.password" } }] }));
    const r2 = await t.run(["sync"]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/\$\.outputs\[0\]\.keys\["BAD-NAME"\]: the key does not match/);
  }, scaled(30_000));
});
