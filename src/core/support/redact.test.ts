/**
 * Redact first, then cut: no truncation of printed text may leave a secret's prefix that the
 * redactor no longer recognises, and no cut splits a character (UTF-8 bytes or a surrogate pair).
 */
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { hookOutputLines, runHook } from "../sync/hooks.js";
import { createLogger } from "./log.js";
import { BoundedText, Redactor, cutText } from "./redact.js";

const SECRET = "Pq7-straddling-SECRET-9xZ";
const LONE_HIGH = /[\ud800-\udbff](?![\udc00-\udfff])/;

function redactor(...secrets: string[]): Redactor {
  const r = new Redactor();
  for (const s of secrets) r.add(s);
  return r;
}

describe("cutText", () => {
  it("cuts to the limit plus an ellipsis, never inside a surrogate pair", () => {
    expect(cutText("abc", 3)).toBe("abc");
    expect(cutText("abcd", 3)).toBe("abc…");
    const t = "a".repeat(9) + "😀" + "b";
    expect(cutText(t, 10)).toBe("a".repeat(9) + "…");
    expect(cutText(t, 11)).toBe("a".repeat(9) + "😀…");
    expect(cutText(t, 10)).not.toMatch(LONE_HIGH);
  });
});

describe("Redactor", () => {
  it("redactCut: a secret straddling the cut leaves no prefix", () => {
    const text = "x".repeat(290) + SECRET + " and the rest";
    const r = redactor(SECRET);
    const cut = r.redactCut(text, 300);
    for (let k = 3; k < SECRET.length; k++) expect(cut).not.toContain(SECRET.slice(0, k));
    // What the old order (cut, then redact) printed:
    expect(r.redact(text.slice(0, 300))).toContain(SECRET.slice(0, 10));
  });

  it("redactCutOff: a tail that is the start of a secret (cut off upstream) is dropped", () => {
    const r = redactor(SECRET, "another-secret-value");
    expect(r.redactCutOff("log line: " + SECRET.slice(0, 12))).toBe("log line: ");
    expect(r.redactCutOff("ends with " + SECRET)).toBe("ends with [REDACTED]");
    expect(r.redactCutOff("nothing secret here")).toBe("nothing secret here");
    // Only a tail that really is a prefix: "Pq" followed by something else is kept.
    expect(r.redactCutOff("Pq7-x at the end")).toBe("Pq7-x at the end");
  });

  it("redactCutOff is linear on a long capture and a long secret", () => {
    const big = "a".repeat(100_000) + "b";
    const r = redactor(big);
    const text = "z" + "a".repeat(64 * 1024);
    expect(r.redactCutOff(text)).toBe("z");
  });
});

describe("BoundedText", () => {
  it("decodes a character split across chunks, and drops a partial character at the limit", () => {
    const b = new BoundedText(1024);
    const bytes = Buffer.from("é😀ü\n");
    for (let i = 0; i < bytes.length; i++) b.write(bytes.subarray(i, i + 1));
    expect(b.text).toBe("é😀ü\n");
    expect(b.truncated).toBe(false);
    const limited = new BoundedText(4); // "é" (2 bytes) + half of "😀"
    limited.write(Buffer.from("é😀"));
    expect(limited.text).toBe("é");
    expect(limited.truncated).toBe(true);
    expect(limited.text).not.toContain("\ufffd");
  });
});

describe("hook output", () => {
  it("each line is redacted, then cut at 500 (a secret straddling 500 leaves no prefix); a multi-line secret is redacted whole", () => {
    const pem = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END KEY-----";
    const b = new BoundedText(64 * 1024);
    b.write(Buffer.from("y".repeat(495) + SECRET + "\n" + pem + "\n" + "z".repeat(499) + "😀tail\n"));
    const lines = hookOutputLines(b, redactor(SECRET, pem));
    expect(lines[0]).toMatch(/^y{495}\[REDA/);
    expect(lines.join("\n")).not.toContain(SECRET.slice(0, 3));
    expect(lines[1]).toBe("[REDACTED]");
    expect(lines.join("\n")).not.toContain("MIIEvQIBADAN");
    expect(lines[2]).toBe("z".repeat(499) + "…");
  });

  it("a secret cut off by the capture limit leaves no prefix", () => {
    const b = new BoundedText(400);
    b.write(Buffer.from("w".repeat(390) + SECRET + "\n"));
    expect(b.truncated).toBe(true);
    const lines = hookOutputLines(b, redactor(SECRET));
    expect(lines).toEqual(["w".repeat(390)]);
  });

  it("runHook logs through the redactor without a secret prefix or a split character (a real child process)", async () => {
    const r = redactor(SECRET);
    let out = "";
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        out += chunk.toString("utf8");
        cb();
      },
    });
    const log = createLogger({ level: "info", format: "json", out: sink, redactor: r });
    // A line whose secret straddles 500, and an "é" whose two bytes arrive in separate writes.
    const script = `printf '%s' "$(printf 'v%.0s' $(seq 1 495))"; printf '%s\\n' '${SECRET}'; printf '\\303'; sleep 0.3; printf '\\251\\n'`;
    const run = await runHook("h", { command: script, shell: true }, [], { env: { PATH: process.env.PATH }, cwd: process.cwd(), log, redactor: r });
    expect(run.ok).toBe(true);
    await new Promise((res) => setImmediate(res));
    const msgs = out
      .trim()
      .split("\n")
      .map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(msgs).toHaveLength(2);
    expect(msgs[0]).toMatch(/^hook h: v{495}\[REDA/);
    for (let k = 3; k < SECRET.length; k++) expect(out).not.toContain(SECRET.slice(0, k));
    expect(msgs[1]).toBe("hook h: é");
  });
});
