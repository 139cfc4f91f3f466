import { spawnSync } from "node:child_process";
import { beforeAll, describe, expect, it } from "vitest";
import { VrError } from "../support/errors.js";
import { scaled } from "../../../test/support/scale.js";
import {
  DOTENV_DIALECTS,
  MAX_ENV_STRING_BYTES,
  checkEnvKey,
  encodeEnvFile,
  valueProblems,
  type DotenvDialect,
  type EnvDialect,
  type ProblemReason,
} from "./dotenv.js";
import {
  ALL_CONSUMERS,
  loadCorpus,
  probeMismatch,
  readWithAll,
  type ConsumerName,
  type ReadResult,
} from "../../../test/dotenv/consumers.js";

const corpus = loadCorpus();
const CTX = { file: "deploy/app.env" };

interface Probe {
  id: string;
  value: string | Buffer;
  /** For the JSON corpus: the expected portable verdict. */
  portable?: "round-trip" | "refuse";
  portableReason?: string | null;
}

const probes: Probe[] = [
  ...corpus.map((c) => ({ id: c.id, value: c.value, portable: c.portable, portableReason: c.reason })),
  { id: "invalid_utf8_bytes", value: Buffer.from([0x66, 0x6f, 0xff, 0x6f]), portable: "refuse", portableReason: "not UTF-8" },
  // K=VALUE is exactly 131072 bytes, so with its NUL one byte too many for execve.
  { id: "oversize", value: "x".repeat(MAX_ENV_STRING_BYTES - "K".length - 1), portable: "refuse", portableReason: "too long" },
  // K=VALUE plus NUL is exactly 131072 bytes: the largest value that still fits.
  { id: "at_limit", value: "x".repeat(MAX_ENV_STRING_BYTES - "K".length - 2), portable: "round-trip", portableReason: null },
];

/** Extra edge cases for the dialect encoders (no expected verdict: whatever is accepted must round-trip). */
const extras: Probe[] = [
  ["extra_sq_bt_lf", "it's `x`\nnext"], // npm dotenv: "…" with \n
  ["extra_sq_bt_crlf", "it's\r\n`x`"], // npm dotenv: "…" with \r\n
  ["extra_bs_dq", 'a\\"b'], // backslash + double quote
  ["extra_bs_sq", "a\\'b"], // backslash + single quote: compose '…' cannot write it
  ["extra_bs_lf", "x\\\ny"], // backslash before LF
  ["extra_bs_cr", "x\\\ry"], // backslash before CR
  ["extra_dollars", "$$$${X}$"],
  ["extra_lit_bs_n_and_quotes", "'`\\n\""], // no npm dotenv quote style fits
  ["extra_separators_quote", "\u2028'\u2029\u0085"],
  ["extra_leading_bom_like", " \ufeff"],
  ["extra_tab_edges_quote", "\t'\t"],
].map(([id, value]) => ({ id: id as string, value: value as string }));
probes.push(...extras);

/** The consumers each dialect is meant for (models where no binary can run here). */
const TARGETS: Record<DotenvDialect, ConsumerName[]> = {
  portable: [...ALL_CONSUMERS],
  compose: ["compose-model"],
  dotenv: ["npm-dotenv", "npm-dotenv-fast"],
  "python-dotenv": ["python-dotenv", "python-dotenv-nointerp"],
  posix: ["dash", "bash", "systemd-model"],
  sh: ["dash", "bash"],
  systemd: ["systemd-model"],
};

/** Values of the 57-value corpus each dialect refuses (derived from dotenv.md §3.2 and §4.2). */
const REFUSED: Record<DotenvDialect, string[]> = {
  portable: corpus.filter((c) => c.portable === "refuse").map((c) => c.id),
  compose: ["nul", "lone_surrogate"],
  dotenv: ["all_quotes", "backslash_only2", "trailing_backslash", "nul", "lone_surrogate"],
  "python-dotenv": ["backslash_only2", "trailing_backslash", "dollar_braced", "dollar_default", "nul", "lone_surrogate"],
  posix: ["bom_inside", "noncharacter", "nul", "lone_surrogate"],
  sh: ["nul", "lone_surrogate"],
  systemd: ["bom_inside", "noncharacter", "nul", "lone_surrogate"],
};

/** Words the message must contain for each reason. */
const REASON_TEXT: Record<ProblemReason, string> = {
  "'": "single quote (')",
  "\\\\": "two consecutive backslashes",
  "trailing \\": "trailing backslash",
  "${…}": "${…} reference",
  CR: "carriage return",
  LF: "line feed",
  NUL: "NUL",
  "U+FEFF": "U+FEFF",
  noncharacter: "noncharacter",
  "not well-formed": "not well-formed",
  "not UTF-8": "not valid UTF-8",
  "too long": "131072 bytes",
  "no quote style": "no npm dotenv quote style",
};

function bytesOf(v: string | Buffer): Buffer {
  return typeof v === "string" ? Buffer.from(v, "utf8") : v;
}

function probeFile(value: string | Buffer, dialect: DotenvDialect): Buffer {
  const text = encodeEnvFile(
    [
      { key: "A", value: "before" },
      { key: "K", value },
      { key: "Y", value: "y" },
      { key: "Z", value: "z" },
    ],
    dialect,
    CTX,
  );
  return Buffer.from(text, "utf8");
}

function refusalOf(key: string, value: string | Buffer, dialect: EnvDialect): VrError {
  try {
    encodeEnvFile([{ key, value }], dialect, CTX);
  } catch (e) {
    if (e instanceof VrError) return e;
    throw e;
  }
  throw new Error(`expected a refusal for ${dialect}`);
}

/** The value (or, for long values, any half of it) must not appear in the message or hint. */
function leaks(text: string, value: string | Buffer): boolean {
  const v = typeof value === "string" ? value : value.toString("latin1");
  if (v.length < 3) return false;
  if (text.includes(v)) return true;
  const half = Math.max(3, Math.ceil(v.length / 2));
  if (v.length >= 8 && v.length <= 4096) {
    for (let i = 0; i + half <= v.length; i++) if (text.includes(v.slice(i, i + half))) return true;
  }
  return false;
}

interface Encoded {
  dialect: DotenvDialect;
  probe: Probe;
  file: Buffer;
}

let encoded: Encoded[] = [];
let forced: { probe: Probe; file: Buffer }[] = [];
let read: Record<ConsumerName, (ReadResult | undefined)[]>;
let forcedRead: Record<ConsumerName, (ReadResult | undefined)[]>;

beforeAll(async () => {
  encoded = [];
  for (const dialect of DOTENV_DIALECTS) {
    for (const probe of probes) {
      // The 128 KiB value is dialect-independent and slow in python-dotenv: round-trip it once.
      if (probe.id === "at_limit" && dialect !== "portable") continue;
      if (valueProblems("K", probe.value, dialect).length === 0) {
        encoded.push({ dialect, probe, file: probeFile(probe.value, dialect) });
      }
    }
  }
  // The naive portable form of each refused value (where it can be written at all), to check that
  // every refusal is backed by a consumer that really breaks.
  forced = probes
    .filter((p) => p.portable === "refuse" && !["lone_surrogate", "oversize"].includes(p.id))
    .map((probe) => ({
      probe,
      file: Buffer.concat([Buffer.from("A='before'\nK='"), bytesOf(probe.value), Buffer.from("'\nY='y'\nZ='z'\n")]),
    }));
  const all = await readWithAll([
    ...encoded.map((e) => ({ file: e.file, consumers: TARGETS[e.dialect] })),
    ...forced.map((f) => ({ file: f.file, consumers: ALL_CONSUMERS })),
  ]);
  read = {} as typeof read;
  forcedRead = {} as typeof forcedRead;
  for (const c of ALL_CONSUMERS) {
    read[c] = all[c].slice(0, encoded.length);
    forcedRead[c] = all[c].slice(encoded.length);
  }
}, scaled(60_000));

describe("python-dotenv availability", () => {
  it("python3 can import dotenv (the round-trip tests need it; they fail rather than skip)", () => {
    const run = spawnSync("python3", ["-c", "import dotenv"], { encoding: "utf8" });
    expect(run.error).toBeUndefined();
    expect(run.status, run.stderr).toBe(0);
  });
});

describe.each(DOTENV_DIALECTS.map((d) => [d]))("dialect %s: corpus round-trip", (dialect) => {
  it("refuses exactly the expected corpus values", () => {
    const refused = corpus.filter((c) => valueProblems("K", c.value, dialect).length > 0).map((c) => c.id);
    expect(refused.sort()).toEqual([...REFUSED[dialect]].sort());
  });

  it("refuses invalid UTF-8 bytes and the oversize value, and accepts the value at the limit", () => {
    const bad = probes.find((p) => p.id === "invalid_utf8_bytes")?.value ?? "";
    expect(valueProblems("K", bad, dialect)).toEqual([expect.objectContaining({ reason: "not UTF-8", position: 3 })]);
    const big = probes.find((p) => p.id === "oversize")?.value ?? "";
    expect(valueProblems("K", big, dialect)).toEqual([expect.objectContaining({ reason: "too long", position: null })]);
    const max = probes.find((p) => p.id === "at_limit")?.value ?? "";
    expect(valueProblems("K", max, dialect)).toEqual([]);
  });

  it.each(TARGETS[dialect].map((c) => [c]))("every accepted value round-trips byte-exactly through %s", (consumer) => {
    const failures: string[] = [];
    encoded.forEach((e, i) => {
      if (e.dialect !== dialect) return;
      const r = read[consumer][i];
      const why = r === undefined ? "no result" : probeMismatch(r, bytesOf(e.probe.value));
      if (why !== null) failures.push(`${e.probe.id}: ${why}`);
    });
    expect(failures).toEqual([]);
  });

  it("round-trips every value it accepts (and only refuses what it must)", () => {
    const tried = encoded.filter((e) => e.dialect === dialect && corpus.some((c) => c.id === e.probe.id)).length;
    expect(tried).toBe(corpus.length - REFUSED[dialect].length);
  });

  it("refuses with a message naming key, file, dialect, reason, position and consumer, never the value", () => {
    for (const probe of probes) {
      const problems = valueProblems("DB_PASSWORD", probe.value, dialect);
      if (problems.length === 0) continue;
      const err = refusalOf("DB_PASSWORD", probe.value, dialect);
      const first = problems[0];
      expect(err.code).toBe("DOTENV_REFUSED");
      expect(err.message).toContain("cannot write DB_PASSWORD to deploy/app.env");
      expect(err.message).toContain(`(dialect "${dialect}")`);
      expect(err.message).toContain(REASON_TEXT[first?.reason ?? "NUL"]);
      if (first?.position != null) expect(err.message).toContain(`at character ${first.position}`);
      expect(err.message).toContain(first?.consumers ?? "?");
      expect(err.hint).toBeTruthy();
      expect(leaks(err.message, probe.value), `${probe.id} leaks into the message`).toBe(false);
      expect(leaks(err.hint ?? "", probe.value), `${probe.id} leaks into the hint`).toBe(false);
    }
  });
});

describe("portable dialect against the corpus verdicts", () => {
  it("matches the verdict and reasons of every corpus value", () => {
    for (const probe of probes.filter((p) => p.portable !== undefined)) {
      const problems = valueProblems("K", probe.value, "portable");
      const verdict = problems.length === 0 ? "round-trip" : "refuse";
      expect(`${probe.id}: ${verdict}`).toBe(`${probe.id}: ${probe.portable}`);
      expect(`${probe.id}: ${problems.map((p) => p.reason).join(", ") || null}`).toBe(`${probe.id}: ${probe.portableReason}`);
    }
  });

  it("gives 1-based positions in characters", () => {
    const pos = (v: string | Buffer): (number | null)[] => valueProblems("K", v, "portable").map((p) => p.position);
    expect(pos("it's")).toEqual([3]);
    expect(pos("line1\r\nline2")).toEqual([6]);
    expect(pos("a\\\\b")).toEqual([2]);
    expect(pos("\\\\")).toEqual([1, 2]);
    expect(pos("abc\\")).toEqual([4]);
    expect(pos("x${HOME}")).toEqual([2]);
    expect(pos("a\0b")).toEqual([2]);
    expect(pos("x\ufdd0y\uffff")).toEqual([2]);
    expect(pos("\ud800x")).toEqual([1]);
    expect(pos("\u{1F511}'")).toEqual([2]); // an astral character counts once
    expect(pos(Buffer.from([0xe2, 0x82, 0xac, 0x80]))).toEqual([2]);
  });

  it("every refused value breaks at least one consumer when written naively (except U+FEFF, refused on documentation grounds)", () => {
    forced.forEach(({ probe }, i) => {
      const broken = ALL_CONSUMERS.filter((c) => {
        const r = forcedRead[c][i];
        return r === undefined || probeMismatch(r, bytesOf(probe.value)) !== null;
      });
      if (probe.id === "bom_inside") expect(broken, probe.id).toEqual([]);
      else expect(broken.length, `${probe.id} broke nobody`).toBeGreaterThan(0);
    });
  });

  it("a quote-breaking injection never creates a variable", () => {
    const i = forced.findIndex((f) => f.probe.id === "inject_quote");
    expect(i).toBeGreaterThanOrEqual(0);
    // Written naively, every consumer gets EVIL...
    for (const c of ALL_CONSUMERS) expect(forcedRead[c][i]?.vars?.has("EVIL"), c).toBe(true);
    // ...so the portable writer refuses it, and the dialects that accept it carry it as one value.
    expect(() => probeFile("x'\nEVIL='pwned", "portable")).toThrow(VrError);
  });
});

describe("per-dialect accepted counts (57-value corpus)", () => {
  it("matches dotenv.md §3.2, less what each dialect refuses", () => {
    const counts = Object.fromEntries(
      DOTENV_DIALECTS.map((d) => [d, corpus.filter((c) => valueProblems("K", c.value, d).length === 0).length]),
    );
    expect(counts).toEqual({
      portable: 42,
      compose: 55,
      dotenv: 52,
      "python-dotenv": 51,
      posix: 53,
      sh: 55,
      systemd: 53,
    });
  });
});

describe("encodeEnvFile", () => {
  const sample = [
    { key: "A", value: "it's" },
    { key: "B", value: 'say "hi" $HOME `x` \\ \n\r' },
  ];

  it("writes each dialect's encoding, LF-terminated, without BOM, export or comments", () => {
    const simple = [{ key: "A", value: "a b" }];
    for (const d of DOTENV_DIALECTS) {
      const out = encodeEnvFile(simple, d, CTX);
      expect(out.endsWith("\n")).toBe(true);
      expect(out).not.toMatch(/^\ufeff|\r|export|#/);
    }
    expect(encodeEnvFile(simple, "portable", CTX)).toBe("A='a b'\n");
    expect(encodeEnvFile(sample, "compose", CTX)).toBe(`A="it's"\nB="say \\"hi\\" $$HOME \`x\` \\\\ \\n\\r"\n`);
    expect(encodeEnvFile(sample, "python-dotenv", CTX)).toBe(`A="it's"\nB="say \\"hi\\" $HOME \`x\` \\\\ \\n\\r"\n`);
    expect(encodeEnvFile(sample, "posix", CTX)).toBe(`A="it's"\nB="say \\"hi\\" \\$HOME \\\`x\\\` \\\\ \n\r"\n`);
    expect(encodeEnvFile(sample, "systemd", CTX)).toBe(encodeEnvFile(sample, "posix", CTX));
    expect(encodeEnvFile(sample, "sh", CTX)).toBe(`A='it'\\''s'\nB='say "hi" $HOME \`x\` \\ \n\r'\n`);
    expect(encodeEnvFile([{ key: "A", value: "it's" }], "dotenv", CTX)).toBe("A=`it's`\n");
    expect(encodeEnvFile([{ key: "A", value: "a\r\nb" }], "dotenv", CTX)).toBe('A="a\\r\\nb"\n');
    expect(encodeEnvFile([{ key: "A", value: "plain" }], "dotenv", CTX)).toBe("A='plain'\n");
    expect(encodeEnvFile([], "portable", CTX)).toBe("");
  });

  it("escapes $$ literally (function-based replacement)", () => {
    expect(encodeEnvFile([{ key: "A", value: "$$" }], "compose", CTX)).toBe('A="$$$$"\n');
    expect(encodeEnvFile([{ key: "A", value: "$&$'$`" }], "posix", CTX)).toBe('A="\\$&\\$\'\\$\\`"\n');
  });

  it("accepts a Buffer holding valid UTF-8 and keeps a leading BOM visible to the checks", () => {
    expect(encodeEnvFile([{ key: "A", value: Buffer.from("p\u00e4ss") }], "portable", CTX)).toBe("A='p\u00e4ss'\n");
    expect(valueProblems("A", Buffer.from("\ufeffx"), "portable")).toEqual([
      expect.objectContaining({ reason: "U+FEFF", position: 1 }),
    ]);
  });

  it("refuses duplicate keys, naming the key", () => {
    const dup = () =>
      encodeEnvFile(
        [
          { key: "TOKEN", value: "a" },
          { key: "TOKEN", value: "b" },
        ],
        "portable",
        CTX,
      );
    expect(dup).toThrow(VrError);
    expect(dup).toThrow(/TOKEN.*more than once/);
  });

  it("refuses invalid key names and bash read-only names where sh reads the file", () => {
    for (const key of ["", "1A", "A-B", "A.B", "export A", "A B", "ÄB", "A=B"]) {
      for (const d of DOTENV_DIALECTS) {
        expect(checkEnvKey(key, d)).not.toBeNull();
        expect(() => encodeEnvFile([{ key, value: "v" }], d, CTX)).toThrow(/does not match/);
      }
    }
    for (const key of ["BASHOPTS", "BASH_VERSINFO", "EUID", "PPID", "SHELLOPTS", "UID"]) {
      for (const d of ["portable", "posix", "sh", "systemd"] as const) {
        expect(checkEnvKey(key, d)).toMatch(/read-only/);
        const err = refusalOf(key, "v", d);
        expect(err.code).toBe("DOTENV_REFUSED");
        expect(err.message).toContain(key);
      }
      for (const d of ["compose", "dotenv", "python-dotenv"] as const) expect(checkEnvKey(key, d)).toBeNull();
    }
    expect(checkEnvKey("_a1", "portable")).toBeNull();
  });

  it("accepts keys that change the sourcing shell: every consumer reads them as written", () => {
    for (const key of ["IFS", "PATH", "ENV", "BASH_ENV", "CDPATH", "PS4", "LD_PRELOAD"]) {
      for (const d of ["portable", "sh", "compose"] as const) expect(checkEnvKey(key, d)).toBeNull();
      expect(encodeEnvFile([{ key, value: "v" }], "portable", CTX)).toBe(`${key}='v'\n`);
    }
  });

  it("produces the documented message shape", () => {
    const err = refusalOf("DB_PASSWORD", "hunter'2", "portable");
    expect(err.message).toBe(
      `cannot write DB_PASSWORD to deploy/app.env (dialect "portable"): the value contains a single quote (') at character 7; ` +
        `sh and systemd cannot escape it inside '…', and Compose, python-dotenv and npm dotenv disagree on \\'. ` +
        `Use a per-file dialect (compose | dotenv | python-dotenv | posix | sh | systemd) or rotate the secret.`,
    );
    expect(err.hint).toContain("compose");
  });

  it("suggests only the dialects that would accept the value", () => {
    const err = refusalOf("K", "abc\\", "portable");
    expect(err.message).toContain("(compose | posix | sh | systemd)");
    const nul = refusalOf("K", "a\0b", "compose");
    expect(nul.message).toContain("No dialect can carry it");
  });

  it("never leaks a canary secret, not even half of it", () => {
    const canary = "CANARY-7f3a9c1e5b2d4086'\\\\${X}\r\0-END";
    for (const d of DOTENV_DIALECTS) {
      const err = refusalOf("K", canary, d);
      expect(leaks(err.message, canary)).toBe(false);
      expect(leaks(err.hint ?? "", canary)).toBe(false);
      expect(err.message).not.toContain("7f3a9c");
      expect(err.message).not.toContain("CANARY");
    }
  });
});

describe.runIf(process.platform === "linux")("the environment-string limit", () => {
  it("is MAX_ARG_STRLEN: execve accepts KEY=VALUE of 131071 bytes plus NUL, not one more", () => {
    const ok = spawnSync("true", { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", K: "x".repeat(MAX_ENV_STRING_BYTES - 3) } });
    expect(ok.error).toBeUndefined();
    const big = spawnSync("true", { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", K: "x".repeat(MAX_ENV_STRING_BYTES - 2) } });
    expect(big.error).toMatchObject({ code: "E2BIG" });
  });
});

describe('dialect "verbatim" (imported Vault Agent range templates)', () => {
  it("writes KEY=value unquoted, in the given order, with a final LF per line", () => {
    const text = encodeEnvFile(
      [
        { key: "A", value: "it's $HOME \"x\" \\" },
        { key: "B", value: "" },
      ],
      "verbatim",
      CTX,
    );
    expect(text).toBe("A=it's $HOME \"x\" \\\nB=\n");
  });

  it.each([
    ["LF", "a\nb", "line feed"],
    ["CR", "a\rb", "carriage return"],
    ["NUL", "a\0b", "NUL"],
  ])("refuses a value with %s, naming the key and never the value", (_name, value, words) => {
    const e = refusalOf("SECRET_KEY", value, "verbatim");
    expect(e.code).toBe("DOTENV_REFUSED");
    expect(e.message).toContain("SECRET_KEY");
    expect(e.message).toContain(words);
    expect(e.message).toContain('dialect "verbatim"');
    expect(leaks(e.message + (e.hint ?? ""), value)).toBe(false);
  });

  it("refuses a key that is not an env name", () => {
    expect(refusalOf("my-key", "v", "verbatim").message).toContain("does not match");
  });
});
