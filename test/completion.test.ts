/**
 * `vault-render completion <shell>`: the scripts carry exactly the program's commands and options
 * (read here from `--help`, independently of the generator), bash completes a subcommand, an option
 * and option/argument values through the real `complete`/`compgen` machinery, fish completes through
 * `complete -C`, and zsh's script passes `zsh -n`. A shell that is not installed is skipped with the
 * reason (.ci/run installs zsh and fish).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runInProcess } from "./helpers.js";

const has = (shell: string) => spawnSync("sh", ["-c", `command -v ${shell}`]).status === 0;

/** Commands from the root --help (commander's implicit `help` left out). */
function helpCommands(help: string): string[] {
  const section = help.slice(help.indexOf("Commands:"));
  return [...section.matchAll(/^ {2}([a-z][a-z-]*)\b/gm)].map((m) => m[1] ?? "").filter((n) => n !== "help");
}

/** Option words (short and long) from a --help text's Options section, -h/--help left out. */
function helpOptions(help: string): string[] {
  const start = help.indexOf("Options:");
  const end = help.indexOf("Commands:", start);
  const section = help.slice(start, end === -1 ? undefined : end);
  const out: string[] = [];
  for (const m of section.matchAll(/^ {2}(-[A-Za-z], )?(--[a-z][a-z-]*)/gm)) {
    if (m[2] === "--help") continue;
    if (m[1]) out.push(m[1].slice(0, 2));
    out.push(m[2] ?? "");
  }
  return out.sort();
}

async function help(args: string[]): Promise<string> {
  const r = await runInProcess([...args, "--help"]);
  expect(r.code).toBe(0);
  return r.stdout;
}

let dir: string;
const scripts: Record<string, string> = {};
let commands: string[];
const optionsOf = new Map<string, string[]>();
let globals: string[];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "vr-completion-"));
  for (const shell of ["bash", "zsh", "fish"]) {
    const r = await runInProcess(["completion", shell]);
    expect(r.code).toBe(0);
    scripts[shell] = path.join(dir, `vault-render.${shell}`);
    await writeFile(scripts[shell], r.stdout);
  }
  const root = await help([]);
  commands = helpCommands(root);
  globals = helpOptions(root);
  for (const c of commands) optionsOf.set(c, helpOptions(await help([c])));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("completion", () => {
  it("knows every command, and refuses an unknown shell", async () => {
    expect(commands).toEqual(expect.arrayContaining(["sync", "check", "init", "completion", "policy", "schema"]));
    const bad = await runInProcess(["completion", "tcsh"]);
    expect(bad.code).toBe(2);
  });

  describe.runIf(has("bash"))("bash", () => {
    /** Run the completion function on a command line (the last word is the one being completed). */
    function complete(words: string[]): string[] {
      const cw = words.map((w) => `'${w}'`).join(" ");
      const out = execFileSync("bash", ["-c", `source "$0"; COMP_WORDS=(${cw}); COMP_CWORD=${words.length - 1}; _vault_render; printf '%s\\n' "\${COMPREPLY[@]}"`, scripts.bash ?? ""], { encoding: "utf8" });
      return out.split("\n").filter(Boolean).sort();
    }

    it("registers itself with complete", () => {
      const out = execFileSync("bash", ["-c", `source <(node "$0" completion bash); complete -p vault-render`, path.join(process.cwd(), "bin", "vault-render.js")], { encoding: "utf8" });
      expect(out.trim()).toBe("complete -o filenames -F _vault_render vault-render");
    });

    it("offers exactly the program's commands, and each command's options plus the global ones", () => {
      expect(complete(["vault-render", ""])).toEqual([...commands].sort());
      expect(complete(["vault-render", "-"])).toEqual(globals);
      for (const c of commands) {
        expect(complete(["vault-render", c, "-"]), c).toEqual([...new Set([...(optionsOf.get(c) ?? []), ...globals])].sort());
      }
    });

    it("completes a subcommand, an option, a choice and an argument's choices", () => {
      expect(complete(["vault-render", "in"])).toEqual(["init"]);
      expect(complete(["vault-render", "sync", "--dr"])).toEqual(["--dry-run"]);
      expect(complete(["vault-render", "--log-format", "j"])).toEqual(["json"]);
      expect(complete(["vault-render", "-l", "x.json", "completion", ""])).toEqual(["bash", "fish", "zsh"]);
      // A free-text value (a duration) gets no completion.
      expect(complete(["vault-render", "sync", "--lock-timeout", ""])).toEqual([]);
    });
  });

  it.skipIf(!has("zsh"))("zsh: the script parses (zsh -n), registers with compdef and carries every command and option", () => {
    const r = spawnSync("zsh", ["-n", scripts.zsh ?? ""], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    // Sourced after compinit, it registers its function for vault-render.
    const registered = execFileSync("zsh", ["-fc", 'autoload -Uz compinit && compinit -u -D; source "$1"; print -r -- ${_comps[vault-render]}', "zsh", scripts.zsh ?? ""], { encoding: "utf8" });
    expect(registered.trim()).toBe("_vault_render");
    const text = execFileSync("cat", [scripts.zsh ?? ""], { encoding: "utf8" });
    for (const c of commands) {
      expect(text).toMatch(new RegExp(`^    '${c}:`, "m"));
      for (const o of optionsOf.get(c) ?? []) expect(text).toContain(o);
    }
  });

  describe.skipIf(!has("fish"))("fish", () => {
    const fish = (line: string) =>
      execFileSync("fish", ["-c", `source $argv[1]; complete -C '${line}'`, scripts.fish ?? ""], { encoding: "utf8" })
        .split("\n")
        .filter(Boolean)
        .map((l) => l.split("\t")[0] ?? "")
        .sort();

    it("parses (fish --no-execute)", () => {
      expect(spawnSync("fish", ["--no-execute", scripts.fish ?? ""]).status).toBe(0);
    });

    it("completes the program's commands, a command's options and a choice", () => {
      expect(fish("vault-render ")).toEqual(expect.arrayContaining([...commands].sort()));
      expect(fish("vault-render init --")).toEqual(expect.arrayContaining((optionsOf.get("init") ?? []).filter((o) => o.startsWith("--"))));
      expect(fish("vault-render completion ")).toEqual(["bash", "fish", "zsh"]);
    });
  });
});
