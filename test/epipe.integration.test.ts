/**
 * The entry exits quietly when the reader of stdout or stderr goes away early
 * (`vault-render --help | head -1`), instead of crashing with an EPIPE stack trace.
 */
import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { BIN } from "./helpers.js";

/** Run the built CLI with one of its output pipes closed before it writes anything. */
function runWithClosedPipe(args: string[], closed: "stdout" | "stderr"): Promise<{ code: number | null; signal: NodeJS.Signals | null; other: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    // Closing our end now, long before node has loaded the CLI, makes its first write fail with EPIPE.
    child[closed].destroy();
    const open = closed === "stdout" ? child.stderr : child.stdout;
    let other = "";
    open.on("data", (d: Buffer) => (other += d.toString()));
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, other }));
  });
}

describe("a closed output pipe", () => {
  it("--help with stdout closed exits 0 without a stack trace", async () => {
    const r = await runWithClosedPipe(["--help"], "stdout");
    expect(r.other).toBe("");
    expect(r).toMatchObject({ code: 0, signal: null });
  });

  it("a usage error with stderr closed exits with its code, printing nothing", async () => {
    const r = await runWithClosedPipe(["no-such-command"], "stderr");
    expect(r.other).toBe("");
    expect(r.signal).toBeNull();
    expect(r.code).toBe(2);
  });
});
