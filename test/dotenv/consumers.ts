/**
 * Real and modelled `.env` consumers for the dotenv round-trip tests (shared/dotenv.md §4.3).
 * Every consumer reads a batch of probe files and returns, per file, either the variables it saw
 * (as raw UTF-8 bytes) or an error. Subprocess consumers run once per batch, not once per file.
 */

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import dotenv from "dotenv";
import { parseComposeEnv } from "./compose-model.js";
import { loadSystemdEnvFile } from "./systemd-model.js";

export interface CorpusValue {
  id: string;
  value: string;
  portable: "round-trip" | "refuse";
  reason: string | null;
  note: string;
}

export function loadCorpus(): CorpusValue[] {
  const file = join(dirname(fileURLToPath(import.meta.url)), "corpus.json");
  const parsed = JSON.parse(readFileSync(file, "utf8")) as { values: CorpusValue[] };
  return parsed.values;
}

/** What one consumer made of one file: the variables (bytes; null = key without value) or an error. */
export type ReadResult = { vars: Map<string, Buffer | null>; error?: undefined } | { vars?: undefined; error: string };

export type ConsumerName =
  | "npm-dotenv"
  | "npm-dotenv-fast"
  | "python-dotenv"
  | "python-dotenv-nointerp"
  | "dash"
  | "bash"
  | "bash-posix"
  | "compose-model"
  | "systemd-model";

export const ALL_CONSUMERS: readonly ConsumerName[] = [
  "npm-dotenv",
  "npm-dotenv-fast",
  "python-dotenv",
  "python-dotenv-nointerp",
  "dash",
  "bash",
  "bash-posix",
  "compose-model",
  "systemd-model",
];

function fromStrings(rec: Iterable<[string, string]>): ReadResult {
  const vars = new Map<string, Buffer | null>();
  for (const [k, v] of rec) vars.set(k, Buffer.from(v, "utf8"));
  return { vars };
}

function guard(read: () => ReadResult): ReadResult {
  try {
    return read();
  } catch (e) {
    return { error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
  }
}

/** The environment for subprocesses: no variable that a probe could reference or inject. */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C.UTF-8", ...extra };
  for (const name of ["HOME", "PYENV_ROOT", "PYENV_VERSION"]) {
    const v = process.env[name];
    if (v !== undefined) env[name] = v;
  }
  return env;
}

interface RunResult {
  status: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Run a command asynchronously (so the batches of different consumers run in parallel). */
function run(cmd: string, args: string[], opts: { input?: string; env: Record<string, string>; cwd?: string }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env, cwd: opts.cwd, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", reject);
    child.on("close", (status) =>
      resolve({ status, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString("utf8") }),
    );
    child.stdin.on("error", () => undefined);
    child.stdin.end(opts.input ?? "");
  });
}

/** Split a batch into chunks that run as parallel processes. */
function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

const PYTHON = String.raw`
import base64, io, json, sys
import dotenv
try:
    from importlib.metadata import version
    ver = version("python-dotenv")
except Exception:
    ver = None
def b64(v):
    return None if v is None else base64.b64encode(v.encode("utf-8", "surrogatepass")).decode("ascii")
out = []
for item in json.load(sys.stdin):
    raw = base64.b64decode(item)
    res = {}
    for name, interpolate in (("interpolate", True), ("plain", False)):
        try:
            stream = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8")
            vals = dotenv.dotenv_values(stream=stream, interpolate=interpolate)
            res[name] = {"vars": {k: b64(v) for k, v in vals.items()}}
        except Exception as e:
            res[name] = {"error": type(e).__name__ + ": " + str(e)}
    out.append(res)
json.dump({"version": ver, "results": out}, sys.stdout)
`;

interface PyResult {
  vars?: Record<string, string | null>;
  error?: string;
}

/** python3 + python-dotenv over a batch (a few processes); throws if python3 or python-dotenv is missing. */
async function readWithPython(
  files: Buffer[],
): Promise<{ version: string | null; interpolate: ReadResult[]; plain: ReadResult[] }> {
  const conv = (r: PyResult): ReadResult => {
    if (r.error !== undefined || r.vars === undefined) return { error: r.error ?? "no result" };
    const vars = new Map<string, Buffer | null>();
    for (const [k, v] of Object.entries(r.vars)) vars.set(k, v === null ? null : Buffer.from(v, "base64"));
    return { vars };
  };
  const parts = await Promise.all(
    chunks(files, 100).map(async (batch) => {
      // CI may point VR_PYTHON at Debian's python3 (where apt installed python3-dotenv).
      const res = await run(process.env.VR_PYTHON || "python3", ["-c", PYTHON], {
        input: JSON.stringify(batch.map((f) => f.toString("base64"))),
        env: cleanEnv(),
      });
      if (res.status !== 0) {
        throw new Error(`python3 with python-dotenv failed (status ${res.status}): ${res.stderr.slice(0, 2000)}`);
      }
      return JSON.parse(res.stdout.toString("utf8")) as {
        version: string | null;
        results: { interpolate: PyResult; plain: PyResult }[];
      };
    }),
  );
  const results = parts.flatMap((p) => p.results);
  return {
    version: parts[0]?.version ?? null,
    interpolate: results.map((r) => conv(r.interpolate)),
    plain: results.map((r) => conv(r.plain)),
  };
}

const PROBE_VARS = ["A", "K", "Y", "Z"] as const;

// For each file: a marker, then (set?, value) for A K Y Z and whether EVIL got set, then marker:status.
const SHELL = [
  "for f do",
  "  printf '%s\\0' \"$VR_MARK\"",
  "  (",
  "    set -a",
  "    . \"$f\"",
  "    printf '%s\\0' \"${A+set}\" \"${A-}\" \"${K+set}\" \"${K-}\" \"${Y+set}\" \"${Y-}\" \"${Z+set}\" \"${Z-}\" \"${EVIL+set}\"",
  "  )",
  "  printf '%s\\0' \"$VR_MARK:$?\"",
  "done",
].join("\n");

/** Source every file with `set -a; . file`, each in its own subshell, in a few shell processes. */
async function readWithShell(shell: "dash" | "bash" | "bash-posix", files: Buffer[]): Promise<ReadResult[]> {
  const parts = await Promise.all(chunks(files, 80).map((batch) => readWithShellOnce(shell, batch)));
  return parts.flat();
}

async function readWithShellOnce(shell: "dash" | "bash" | "bash-posix", files: Buffer[]): Promise<ReadResult[]> {
  const dir = mkdtempSync(join(tmpdir(), "vr-dotenv-"));
  try {
    const paths = files.map((f, i) => {
      const p = join(dir, `${i}.env`);
      writeFileSync(p, f, { mode: 0o600 });
      return p;
    });
    const mark = `VRMARK${randomBytes(16).toString("hex")}`;
    const argv =
      shell === "dash"
        ? ["dash", ["-c", SHELL, "dash", ...paths]]
        : shell === "bash"
          ? ["bash", ["-c", SHELL, "bash", ...paths]]
          : ["bash", ["--posix", "-c", SHELL, "bash", ...paths]];
    const res = await run(argv[0] as string, argv[1] as string[], { env: cleanEnv({ VR_MARK: mark }), cwd: dir });
    const fields: Buffer[] = [];
    let start = 0;
    for (let i = 0; i < res.stdout.length; i++) {
      if (res.stdout[i] === 0) {
        fields.push(res.stdout.subarray(start, i));
        start = i + 1;
      }
    }
    const results: ReadResult[] = [];
    let i = 0;
    for (let n = 0; n < files.length; n++) {
      if (fields[i]?.toString() !== mark) throw new Error(`${shell}: lost framing at file ${n}`);
      i++;
      const body: Buffer[] = [];
      while (i < fields.length && !(fields[i]?.toString().startsWith(`${mark}:`) ?? false)) body.push(fields[i++] as Buffer);
      const status = fields[i++]?.toString().slice(mark.length + 1);
      if (body.length !== 9) {
        results.push({ error: `${shell}: sourcing failed (subshell status ${status}, ${body.length} fields)` });
        continue;
      }
      const vars = new Map<string, Buffer | null>();
      PROBE_VARS.forEach((name, j) => {
        if (body[2 * j]?.toString() === "set") vars.set(name, body[2 * j + 1] ?? Buffer.alloc(0));
      });
      if (body[8]?.toString() === "set") vars.set("EVIL", Buffer.from("(set)"));
      results.push({ vars });
    }
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A probe file and the consumers that should read it. */
export interface ReadJob {
  file: Buffer;
  consumers: readonly ConsumerName[];
}

/**
 * Read a batch of files, each with the consumers it lists. Subprocess consumers get one batch each
 * (split into a few processes), run in parallel. results[c][i] is undefined when job i skipped c.
 */
export async function readWithAll(jobs: ReadJob[]): Promise<Record<ConsumerName, (ReadResult | undefined)[]>> {
  // Identical files (e.g. posix and systemd, or portable and sh for most values) are read once.
  const firstOf = new Map<string, number>();
  const canonical = jobs.map((j, i) => {
    const key = j.file.toString("base64");
    if (!firstOf.has(key)) firstOf.set(key, i);
    return firstOf.get(key) ?? i;
  });
  const pick = (c: ConsumerName): number[] => {
    const wanted = new Set(jobs.flatMap((j, i) => (j.consumers.includes(c) ? [canonical[i] ?? i] : [])));
    return [...wanted].sort((x, y) => x - y);
  };
  const spread = (idx: number[], got: ReadResult[]): (ReadResult | undefined)[] => {
    const byCanonical = new Map<number, ReadResult | undefined>();
    idx.forEach((i, k) => byCanonical.set(i, got[k]));
    return jobs.map((_, i) => byCanonical.get(canonical[i] ?? i));
  };
  const files = (idx: number[]): Buffer[] => idx.map((i) => (jobs[i] as ReadJob).file);
  const inProcess = (c: ConsumerName, read: (f: Buffer) => Iterable<[string, string]>): (ReadResult | undefined)[] => {
    const idx = pick(c);
    return spread(
      idx,
      files(idx).map((f) => guard(() => fromStrings(read(f)))),
    );
  };

  const pyIdx = [...new Set([...pick("python-dotenv"), ...pick("python-dotenv-nointerp")])].sort((x, y) => x - y);
  const shells = ["dash", "bash", "bash-posix"] as const;
  const [py, ...sh] = await Promise.all([
    readWithPython(files(pyIdx)),
    ...shells.map((name) => readWithShell(name, files(pick(name)))),
  ]);
  const all: Record<ConsumerName, (ReadResult | undefined)[]> = {
    "npm-dotenv": inProcess("npm-dotenv", (f) => Object.entries(dotenv.parse(f))),
    "npm-dotenv-fast": inProcess("npm-dotenv-fast", (f) => Object.entries(dotenv.parse(f, { fast: true }))),
    "python-dotenv": spread(pyIdx, py.interpolate),
    "python-dotenv-nointerp": spread(pyIdx, py.plain),
    dash: spread(pick("dash"), sh[0] ?? []),
    bash: spread(pick("bash"), sh[1] ?? []),
    "bash-posix": spread(pick("bash-posix"), sh[2] ?? []),
    "compose-model": inProcess("compose-model", (f) => parseComposeEnv(f)),
    "systemd-model": inProcess("systemd-model", (f) => loadSystemdEnvFile(f)),
  };
  // Report a result only where the job asked for that consumer.
  for (const c of ALL_CONSUMERS) all[c] = all[c].map((r, i) => (jobs[i]?.consumers.includes(c) ? r : undefined));
  return all;
}

/**
 * Why a read result does not match the probe (A='before', K=<expected>, Y='y', Z='z', nothing else),
 * or null if it matches byte for byte. Never prints the expected value, only short diagnostics.
 */
export function probeMismatch(r: ReadResult, expected: Buffer): string | null {
  if (r.vars === undefined) return `error (${r.error.slice(0, 200)})`;
  const problems: string[] = [];
  const want: Record<string, Buffer> = { A: Buffer.from("before"), K: expected, Y: Buffer.from("y"), Z: Buffer.from("z") };
  for (const [name, value] of Object.entries(want)) {
    const got = r.vars.get(name);
    if (got === undefined) problems.push(`-${name}`);
    else if (got === null) problems.push(`${name}=None`);
    else if (!got.equals(value)) problems.push(`${name}≠ (${got.length} bytes, want ${value.length})`);
  }
  for (const name of r.vars.keys()) if (!(name in want)) problems.push(`+${name}`);
  return problems.length === 0 ? null : problems.join(" ");
}
