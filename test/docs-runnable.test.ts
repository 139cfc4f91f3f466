/**
 * The docs run: every ```sh runnable block of README.md and docs/*.md is executed, in order, by
 * `sh -e` against a bare sandbox (`scripts/sandbox.js --bare`: the double with nothing configured),
 * as one tour of one tree: the operations guide from `vault-render init` through the `vault`
 * commands it prints to a working sync, then the policy and check pages on the tree it made.
 * `/srv/vault` becomes a temp tree; `vault` is test/support/vault-cli.js (the CLI's HTTP calls, as
 * no vault binary is here) and `vault-render` the built bin, both on PATH. The block of commands
 * `init` prints must be what `init` prints for /srv/vault (its policy body elided in the doc), and
 * after each block past the first the tree must sync (exit 0).
 */
import { spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "./helpers.js";
import { scaled } from "./support/scale.js";

/** The pages in the order the tour follows them: each later page works on the tree the earlier made. */
const TOUR = ["docs/operations.md", "docs/policy.md", "docs/check.md"];
const POLICY_PLACEHOLDER = "…the policy printed above…\n";

interface Block {
  where: string;
  text: string;
}

function runnableBlocks(rel: string): Block[] {
  const lines = readFileSync(path.join(ROOT, rel), "utf8").split("\n");
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^```sh runnable\s*$/.test(lines[i] ?? "")) continue;
    const start = i + 1;
    const body: string[] = [];
    while (++i < lines.length && !/^```/.test(lines[i] ?? "")) body.push(lines[i] ?? "");
    out.push({ where: `${rel}:${start}`, text: body.join("\n") + "\n" });
  }
  return out;
}

const base = mkdtempSync(path.join(tmpdir(), "vr-docs-run-"));
const srv = path.join(base, "srv/vault");
const bin = path.join(base, "bin");
let sandbox: ChildProcess | undefined;
let env: NodeJS.ProcessEnv = {};

beforeAll(async () => {
  mkdirSync(bin);
  writeFileSync(path.join(bin, "vault"), `#!/bin/sh\nexec "${process.execPath}" "${path.join(ROOT, "test/support/vault-cli.js")}" "$@"\n`);
  writeFileSync(path.join(bin, "vault-render"), `#!/bin/sh\nexec "${process.execPath}" "${path.join(ROOT, "bin/vault-render.js")}" "$@"\n`);
  chmodSync(path.join(bin, "vault"), 0o755);
  chmodSync(path.join(bin, "vault-render"), 0o755);
  const child = spawn(process.execPath, [path.join(ROOT, "scripts/sandbox.js"), "--bare", "--dir", path.join(base, "unused"), "--port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
  sandbox = child;
  const out = await new Promise<string>((resolve, reject) => {
    let text = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`sandbox did not get ready: ${text}${err}`)), scaled(20_000));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.stdout.on("data", (d: Buffer) => {
      text += d.toString();
      if (text.includes("Ctrl-C stops it")) {
        clearTimeout(timer);
        resolve(text);
      }
    });
    child.on("exit", (code) => reject(new Error(`sandbox exited ${code}: ${err}`)));
  });
  const addr = /^ {2}export VAULT_ADDR=(\S+)$/m.exec(out)?.[1] ?? "";
  const token = /^ {2}export VAULT_TOKEN=(\S+)/m.exec(out)?.[1] ?? "";
  expect(addr).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("VAULT_")));
  env = { ...inherited, PATH: `${bin}:${process.env["PATH"] ?? "/usr/bin:/bin"}`, HOME: base, NO_COLOR: "1", VAULT_ADDR: addr, VAULT_TOKEN: token };
});

afterAll(() => {
  if (sandbox && sandbox.exitCode === null) sandbox.kill("SIGTERM");
  rmSync(base, { recursive: true, force: true });
});

function sh(script: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync("sh", ["-e", "-c", script], { cwd: existsSync(srv) ? srv : base, env, encoding: "utf8", timeout: scaled(60_000) });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const local = (text: string) => text.replaceAll("/usr/local/bin/vault-render", "vault-render").replaceAll("/srv/vault", srv);

describe("runnable doc blocks (sh -e, bare sandbox, vault CLI stand-in)", () => {
  it("every runnable block is on the tour", () => {
    const pages = ["README.md", ...readdirSync(path.join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];
    const off = pages.filter((p) => !TOUR.includes(p) && runnableBlocks(p).length > 0);
    expect(off, "add these pages to TOUR in the order a reader follows them").toEqual([]);
    for (const p of TOUR) expect(runnableBlocks(p).length, `${p} has no runnable block`).toBeGreaterThan(0);
  });

  it("the tour runs: init, the commands it prints, by hand, wrapped, policy, check", () => {
    const blocks = TOUR.flatMap(runnableBlocks);
    let first = true;
    let initOut = "";
    for (const block of blocks) {
      let script = local(block.text);
      if (script.includes(POLICY_PLACEHOLDER)) {
        // The doc shows the commands `init` printed for /srv/vault: compare, then run what it printed.
        const at = initOut.indexOf("# Run these with a Vault admin token");
        expect(at, "init printed no commands").toBeGreaterThan(-1);
        const printed = initOut.slice(at);
        const commands = printed
          .replace(/<<'EOF'\n[\s\S]*?\nEOF\n/, `<<'EOF'\n${POLICY_PLACEHOLDER}EOF\n`)
          .split("\n")
          .filter((l) => l.trim() !== "" && (!l.startsWith("#") || l === POLICY_PLACEHOLDER.trim()))
          .join("\n");
        expect(commands + "\n", `${block.where} differs from what init printed`).toBe(script);
        script = printed;
      }
      const r = sh(script);
      expect(r.code, `${block.where} failed:\n${r.stderr}`).toBe(0);
      if (first) initOut = r.stdout;
      if (!first) {
        const sync = sh(`vault-render --layout ${srv}/vault-layout.json sync`);
        expect(sync.code, `sync after ${block.where}: ${sync.stderr}`).toBe(0);
        expect(sync.stderr).toBe("");
      }
      first = false;
    }
    expect(readFileSync(path.join(srv, "public/app/app.env"), "utf8")).toMatch(/^GREETING='?hello'?$/m);
    const check = sh(`vault-render --layout ${srv}/vault-layout.json check`);
    expect(check.code, check.stderr).toBe(0);
  });

  it("the vault stand-in refuses what it does not cover instead of passing it", () => {
    const r = sh("vault token create -policy=homelab");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not in this stand-in/);
    const denied = sh(`VAULT_TOKEN=nope vault read auth/approle/role/homelab/role-id`);
    expect(denied.code).toBe(2);
    expect(denied.stderr).toMatch(/Code: 403/);
  });
});
