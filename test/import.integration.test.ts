/**
 * `vault-render import` through the CLI (in-process): exit codes, the stderr line format, --json's
 * shape, --partial, --force, and one end to end run: a small Vault Agent config imported, then
 * `sync` against the double, with the rendered bytes compared to what the agent would write.
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { makeTree, runInProcess } from "./helpers.js";
import type { Tree } from "./helpers.js";

let dirs: string[] = [];
let trees: Tree[] = [];
afterEach(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  await Promise.all(trees.map((t) => t.cleanup()));
  dirs = [];
  trees = [];
});

async function scratch(files: Record<string, string>): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), "vr-import-cli-"));
  dirs.push(d);
  for (const [rel, text] of Object.entries(files)) await writeFile(path.join(d, rel), text.replace(/@ROOT@/g, d));
  return d;
}

const AUTH = `auto_auth {
  method "approle" {
    config = {
      role_id_file_path = "@ROOT@/agent-only/approle/role_id"
      secret_id_file_path = "@ROOT@/agent-only/approle/secret_id"
      remove_secret_id_file_after_reading = false
    }
  }
}
`;
const GOOD = `template {
  destination = "@ROOT@/public/db.pass"
  contents = "{{ with secret \\"secret/data/db\\" }}{{ .Data.data.password }}{{ end }}"
  error_on_missing_key = true
}
`;
const BAD = `template {
  destination = "@ROOT@/public/other"
  contents = "{{ env \\"HOME\\" }}"
  error_on_missing_key = true
}
`;

describe("import CLI", () => {
  it("exit 0 writes the layout; an existing --out is exit 2 without --force and replaced with it", async () => {
    const d = await scratch({ "agent.hcl": AUTH + GOOD });
    const out = path.join(d, "layout.json");
    const r = await runInProcess(["import", path.join(d, "agent.hcl"), "--out", out]);
    expect(r).toMatchObject({ code: 0, stdout: "", stderr: "" });
    const layout = JSON.parse(await readFile(out, "utf8")) as Record<string, unknown>;
    expect(layout.outputs).toEqual([{ file: "db.pass", format: "raw", value: "secret-db.password" }]);
    const again = await runInProcess(["import", path.join(d, "agent.hcl"), "--out", out]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/^vault-render: import: .*layout\.json exists/);
    const forced = await runInProcess(["import", path.join(d, "agent.hcl"), "--out", out, "--force"]);
    expect(forced.code).toBe(0);
  });

  it("a refusal: exit 1, nothing written, one stderr line <file>:<line>: <construct>: <why>", async () => {
    const d = await scratch({ "agent.hcl": AUTH + GOOD + BAD });
    const cfg = path.join(d, "agent.hcl");
    const out = path.join(d, "layout.json");
    const r = await runInProcess(["import", cfg, "--out", out]);
    expect(r.code).toBe(1);
    expect(existsSync(out)).toBe(false);
    expect(r.stderr.split("\n").filter((l) => l !== "")).toEqual([`vault-render: import: ${cfg}:17: function env: env has no equivalent in vault-render (its templates only read keys of Vault sources)`]);
    const p = await runInProcess(["import", cfg, "--out", out, "--partial"]);
    expect(p.code).toBe(0);
    expect((JSON.parse(await readFile(out, "utf8")) as { outputs: unknown[] }).outputs).toHaveLength(1);
  });

  it("--json: one document on stdout, stderr quiet", async () => {
    const d = await scratch({ "agent.hcl": AUTH + GOOD.replace("  error_on_missing_key = true\n", "") + BAD });
    const cfg = path.join(d, "agent.hcl");
    const r = await runInProcess(["import", cfg, "--out", path.join(d, "l.json"), "--json"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("");
    const doc = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(Object.keys(doc).sort()).toEqual(["exitCode", "layout", "notes", "outputs", "refusals", "sources", "templates"]);
    expect(doc).toMatchObject({ layout: null, templates: [], exitCode: 1, sources: 1, outputs: 1, refusals: [{ file: cfg, line: 16, construct: "function env", reason: expect.any(String) as string }] });
    expect(doc.notes).toEqual([{ file: cfg, line: 10, text: expect.stringContaining("<no value>") as string }]);
  });

  it("notes go to stderr as <file>:<line>: note: <text> with exit 0", async () => {
    const d = await scratch({ "agent.hcl": AUTH.replace("      remove_secret_id_file_after_reading = false\n", "") + GOOD });
    const cfg = path.join(d, "agent.hcl");
    const r = await runInProcess(["import", cfg, "--out", path.join(d, "l.json")]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`vault-render: import: ${cfg}:2: note: remove_secret_id_file_after_reading is unset, and Vault Agent's default is true: written as removeSecretIdFile: true (vault-render's own default is false)\n`);
  });

  it.each([
    ["a missing config", ["import", "/nonexistent/agent.hcl", "--out", "/tmp/x.json"], /cannot read \/nonexistent\/agent\.hcl: ENOENT/],
    ["no --out", ["import", "agent.hcl"], /--out/],
    ["a bad --from", ["import", "agent.hcl", "--out", "x", "--from", "nomad"], /--from/],
  ])("exit 2 for %s", async (_n, args, re) => {
    const r = await runInProcess(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(re);
  });

  it("exit 2 for a config that does not parse and for a missing template source", async () => {
    const d = await scratch({ "bad.hcl": "template {\n", "agent.hcl": AUTH + 'template {\n  source = "nope.ctmpl"\n  destination = "@ROOT@/public/x"\n}\n' });
    const bad = await runInProcess(["import", path.join(d, "bad.hcl"), "--out", path.join(d, "l.json")]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/does not parse/);
    const missing = await runInProcess(["import", path.join(d, "agent.hcl"), "--out", path.join(d, "l.json")]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read template nope\.ctmpl: ENOENT/);
  });
});

describe("import, then sync against the double", () => {
  it("renders the bytes the agent's templates would", async () => {
    const t = await makeTree({
      policy: `path "secret/data/*" { capabilities = ["read"] }\npath "sys/internal/ui/mounts/*" { capabilities = ["read"] }\n`,
    });
    trees.push(t);
    t.double.kvPut("secret", "apps/web", { user: "web", password: "p@ss w'rd $x", API_KEY: "k1", "A_FIRST": "1" });
    const cfg = path.join(t.dir, "agent.hcl");
    await writeFile(
      cfg,
      (
        AUTH +
        `template {
  destination = "@ROOT@/public/web/password"
  contents = "{{ with secret \\"secret/data/apps/web\\" }}{{ .Data.data.password }}{{ end }}\\n"
}
template {
  destination = "@ROOT@/public/web/app.env"
  contents = <<EOT
{{ with secret "secret/data/apps/web" -}}
{{ range $k, $v := .Data.data -}}
{{ $k }}={{ $v }}
{{ end -}}
{{ end -}}
EOT
}
template {
  source = "web.ctmpl"
  destination = "@ROOT@/public/web/app.conf"
}
`
      ).replace(/@ROOT@/g, t.dir),
    );
    await writeFile(path.join(t.dir, "web.ctmpl"), '# {{ "{{" }} literal\n{{ with secret "secret/data/apps/web" -}}\nuser = {{ .Data.data.user }}\nkey = {{ .Data.data.API_KEY | base64Encode }}\n{{- end }}\n');
    const imp = await runInProcess(["import", cfg, "--out", t.layoutFile, "--force"]);
    expect(imp.code, imp.stderr).toBe(0);
    // public/ is the destinations' directory, which exists on the agent's host.
    await mkdir(path.join(t.dir, "public", "web"), { recursive: true });
    const sync = await t.run(["sync"]);
    expect(sync.code, sync.stderr).toBe(0);
    const web = path.join(t.dir, "public", "web");
    expect(await readFile(path.join(web, "password"), "utf8")).toBe("p@ss w'rd $x\n");
    // Go ranges over a map in sorted key order; values are written as they are.
    expect(await readFile(path.join(web, "app.env"), "utf8")).toBe("API_KEY=k1\nA_FIRST=1\npassword=p@ss w'rd $x\nuser=web\n");
    expect(await readFile(path.join(web, "app.conf"), "utf8")).toBe(`# {{ literal\nuser = web\nkey = ${Buffer.from("k1").toString("base64")}\n`);
  });
});
