/**
 * The docs match the CLI: every `vault-render …` command line in a `sh` code block of README.md or
 * docs/*.md names a real command, only options that command (or the program) has, a value for
 * every option that takes one, and no value for a flag. The program is read from its own --help
 * (in-process), so a renamed or removed option fails here before an operator copies it.
 */
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ROOT, runInProcess } from "./helpers.js";

/** Option word → whether it takes a value (`--layout <file>`), from a --help text's Options section. */
function helpOptions(help: string): Map<string, boolean> {
  const start = help.indexOf("Options:");
  const end = help.indexOf("Commands:", start);
  const out = new Map<string, boolean>();
  for (const m of help.slice(start, end === -1 ? undefined : end).matchAll(/^ {2}(?:(-[A-Za-z]), )?(--[a-z][a-z-]*)( [<[])?/gm)) {
    const takesValue = m[3] !== undefined;
    if (m[1]) out.set(m[1], takesValue);
    out.set(m[2] ?? "", takesValue);
  }
  return out;
}

async function help(args: string[]): Promise<string> {
  const r = await runInProcess([...args, "--help"]);
  expect(r.code).toBe(0);
  return r.stdout;
}

interface DocLine {
  where: string;
  words: string[];
}

/** `vault-render …` lines of ```sh blocks: continuations joined, comments and `[optional]` synopsis parts dropped. */
function docLines(): DocLine[] {
  const files = ["README.md", ...readdirSync(path.join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];
  const out: DocLine[] = [];
  for (const rel of files) {
    const lines = readFileSync(path.join(ROOT, rel), "utf8").split("\n");
    let inSh = false;
    for (let i = 0; i < lines.length; i++) {
      const raw = lines[i] ?? "";
      if (/^```/.test(raw)) {
        inSh = !inSh && /^```(sh|bash|console)(\s+runnable)?\s*$/.test(raw);
        continue;
      }
      if (!inSh) continue;
      let text = raw;
      const at = i + 1;
      while (text.endsWith("\\") && i + 1 < lines.length) text = text.slice(0, -1) + " " + (lines[++i] ?? "");
      text = text.replace(/(^|\s)#.*$/, "").replace(/\[[^\]]*\]/g, " ");
      // The command itself (`vault-render`, `/usr/local/bin/vault-render`) where a shell starts a command:
      // a line's start, after `(`, `;`, `&&`, `||`, `|`, `sudo`, `exec` (not `-o vault-render`, a user name).
      const m = /(?:^\s*|[(;&|]\s*|\bsudo\s+|\bexec\s+)(?:\/usr\/local\/bin\/)?vault-render(\s[^|;&)>]*)?(?=$|[|;&)>])/.exec(text);
      if (!m) continue;
      const words = (m[1] ?? "").trim().split(/\s+/).filter(Boolean);
      out.push({ where: `${rel}:${at}`, words });
    }
  }
  return out;
}

let globals: Map<string, boolean>;
const optionsOf = new Map<string, Map<string, boolean>>();

beforeAll(async () => {
  const root = await help([]);
  globals = helpOptions(root);
  const section = root.slice(root.indexOf("Commands:"));
  for (const [, name] of section.matchAll(/^ {2}([a-z][a-z-]*)\b/gm)) {
    if (name && name !== "help") optionsOf.set(name, helpOptions(await help([name])));
  }
});

/** Why a documented command line is not one the CLI accepts, or null. */
function problem(words: string[]): string | null {
  let cmd: string | undefined;
  for (let i = 0; i < words.length; i++) {
    const w = words[i] ?? "";
    if (w.startsWith("-")) {
      const [flag, inline] = w.split("=", 2) as [string, string | undefined];
      const own = cmd ? optionsOf.get(cmd) : undefined;
      const takesValue = own?.get(flag) ?? globals.get(flag);
      if (takesValue === undefined) return `${flag} is not an option of ${cmd ?? "the program"}`;
      if (takesValue && inline === undefined) {
        const v = words[i + 1];
        if (v === undefined || v.startsWith("-")) return `${flag} needs a value`;
        i++;
      } else if (!takesValue && inline !== undefined) return `${flag} takes no value`;
      continue;
    }
    if (cmd === undefined) {
      if (!optionsOf.has(w)) return `"${w}" is not a command`;
      cmd = w;
    }
  }
  return null;
}

describe("the docs' command lines", () => {
  it("are found (the extraction itself works)", () => {
    const lines = docLines();
    // README's command list alone shows every command; a broken extractor would find few.
    expect(lines.length).toBeGreaterThan(30);
    const commands = new Set(lines.map((l) => l.words.find((w) => !w.startsWith("-"))));
    for (const c of ["sync", "check", "status", "rotate", "policy", "watch", "schema", "init", "completion"]) expect(commands).toContain(c);
  });

  it("each name a real command with its real options", () => {
    const bad = docLines()
      .map((l) => ({ where: l.where, why: problem(l.words) }))
      .filter((x) => x.why !== null);
    expect(bad).toEqual([]);
  });

  it("a made-up option or command is caught (the check can fail)", () => {
    expect(problem(["sync", "--no-such-flag"])).toMatch(/not an option/);
    expect(problem(["synk"])).toMatch(/not a command/);
    expect(problem(["sync", "--lock-timeout"])).toMatch(/needs a value/);
    expect(problem(["--layout", "x.json", "check", "--offline", "--max-age", "15m", "--json"])).toBeNull();
  });
});
