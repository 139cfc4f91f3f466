import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runImport, sourceNameOf } from "./import.js";
import type { ImportResult } from "./import.js";

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(os.tmpdir(), "vr-import-"));
  for (const [rel, text] of Object.entries(files)) {
    const f = path.join(root, rel);
    mkdirSync(path.dirname(f), { recursive: true });
    writeFileSync(f, text.replace(/@ROOT@/g, root));
  }
  return root;
}

const AUTH = `auto_auth {
  method "approle" {
    config = {
      role_id_file_path = "@ROOT@/etc/vault-agent/role_id"
      secret_id_file_path = "@ROOT@/etc/vault-agent/secret_id"
      remove_secret_id_file_after_reading = false
    }
  }
}
`;

async function imp(files: Record<string, string>, extra: { partial?: boolean; config?: string } = {}): Promise<{ root: string; res: ImportResult; layout: Record<string, unknown> | null }> {
  const root = tree(files);
  const out = path.join(root, "out", "layout.json");
  const res = await runImport({ config: path.join(root, extra.config ?? "agent.hcl"), out, partial: extra.partial ?? false, force: false });
  const layout = existsSync(out) ? (JSON.parse(readFileSync(out, "utf8")) as Record<string, unknown>) : null;
  return { root, res, layout };
}

/** A template stanza; contents as a heredoc when it ends with a newline, else as a quoted string. */
const tpl = (dest: string, body: string, more = "") =>
  `template {\n  destination = "@ROOT@${dest}"\n  contents = ${body.endsWith("\n") ? `<<EOT\n${body}EOT` : JSON.stringify(body)}\n${more}}\n`;

describe("import: translations", () => {
  it("kv2 raw value with newline, kv1 raw without, one source per path", async () => {
    const { res, layout, root } = await imp({
      "agent.hcl":
        AUTH +
        tpl("/srv/app/db.pass", '{{ with secret "secret/data/apps/web" }}{{ .Data.data.password }}{{ end }}\n') +
        tpl("/srv/app/user", '{{- with secret "secret/data/apps/web" -}}\n{{ .Data.data.user }}\n{{- end -}}\n') +
        tpl("/srv/app/v1", '{{ with secret "kv/apps/old" }}{{ .Data.token }}{{ end }}'),
    });
    expect(res.refusals).toEqual([]);
    expect(res.exitCode).toBe(0);
    expect(layout).toMatchObject({
      auth: { approle: { roleIdFile: "role_id", secretIdFile: "secret_id", removeSecretIdFile: false } },
      paths: { public: `${root}/srv/app`, agentOnly: `${root}/etc/vault-agent` },
      sources: {
        "secret-apps-web": { type: "kv", mount: "secret", path: "apps/web", kvVersion: 2 },
        "kv-apps-old": { type: "kv", mount: "kv", path: "apps/old", kvVersion: 1 },
      },
      outputs: [
        { file: "db.pass", format: "raw", value: "secret-apps-web.password", newline: true },
        { file: "user", format: "raw", value: "secret-apps-web.user" },
        { file: "v1", format: "raw", value: "kv-apps-old.token" },
      ],
    });
    expect((layout?.outputs as Record<string, unknown>[])[1]).not.toHaveProperty("newline");
  });

  it("a lease (database creds), the env idiom and a template with filters and a literal {{", async () => {
    const { res, layout } = await imp({
      "agent.hcl":
        AUTH +
        tpl("/srv/app/db.env", '{{ with secret "database/creds/app" }}DB_USER={{ .Data.username }}\nDB_PASS={{ .Data.password | toJSON }}\n{{ end }}') +
        tpl("/srv/app/app.env", '{{ with secret "secret/data/apps/web" -}}\n{{ range $k, $v := .Data.data -}}\n{{ $k }}={{ $v }}\n{{ end -}}\n{{ end }}') +
        tpl("/srv/app/x.conf", 'a {{"{{"}} b {{ with secret "secret/data/apps/web" }}{{ base64Decode .Data.data.cert }} {{ .Data.data.k | trimSpace | base64Encode }}{{ end }}\nlit {{ c\n'.replace("lit {{ c\n", "")),
    });
    expect(res.refusals).toEqual([]);
    expect(layout).toMatchObject({
      sources: { "database-creds-app": { type: "lease", path: "database/creds/app" } },
      outputs: [
        { file: "db.env", format: "template", inline: "DB_USER={{ database-creds-app.username }}\nDB_PASS={{ database-creds-app.password | json }}\n" },
        { file: "app.env", format: "env", dialect: "verbatim", from: ["secret-apps-web"] },
        { file: "x.conf", format: "template", inline: 'a {{ "{{" }} b {{ secret-apps-web.cert | base64decode }} {{ secret-apps-web.k | trim | base64 }}\n' },
      ],
    });
    expect(res.notes.some((n) => n.text.startsWith("toJSON"))).toBe(true);
  });

  it("a template from a source file goes to templates/<file with _>.tmpl beside the layout", async () => {
    const { res, layout, root } = await imp({
      "agent.hcl": AUTH + `template {\n  source = "web.ctmpl"\n  destination = "@ROOT@/srv/web/conf/app.conf"\n}\n` + tpl("/srv/web/x", '{{ with secret "secret/data/a" }}{{ .Data.data.b }}{{ end }}'),
      "web.ctmpl": 'user = {{ with secret "secret/data/a" }}{{ .Data.data.u }}{{ end }}\n',
    });
    expect(res.exitCode).toBe(0);
    expect(res.templates).toEqual(["templates/conf_app.conf.tmpl"]);
    expect(layout?.outputs).toContainEqual({ file: "conf/app.conf", format: "template", template: "templates/conf_app.conf.tmpl" });
    expect(readFileSync(path.join(root, "out/templates/conf_app.conf.tmpl"), "utf8")).toBe("user = {{ secret-a.u }}\n");
  });

  it("PKI: stanzas of one issue in one directory form one set, cert + issuing CA is the fullchain", async () => {
    const issue = '{{ with secret "pki/issue/web" "common_name=web.example.com" "alt_names=a.example.com,b.example.com" "ttl=72h" }}';
    const { res, layout } = await imp({
      "agent.hcl":
        AUTH +
        tpl("/srv/app/certs/cert.pem", `${issue}{{ .Data.certificate }}{{ end }}\n`) +
        tpl("/srv/app/certs/key.pem", `${issue}{{ .Data.private_key }}{{ end }}\n`) +
        tpl("/srv/app/certs/full.pem", `${issue}{{ .Data.certificate }}\n{{ .Data.issuing_ca }}{{ end }}\n`) +
        tpl("/srv/app/a.env", '{{ with secret "secret/data/a" }}{{ .Data.data.b }}{{ end }}'),
    });
    expect(res.refusals).toEqual([]);
    expect(layout?.outputs).toEqual([
      { format: "pki", dir: "certs", mount: "pki", role: "web", commonName: "web.example.com", altNames: ["a.example.com", "b.example.com"], ttl: "72h", files: { cert: "cert.pem", key: "key.pem", ca: null, fullchain: "full.pem" } },
      { file: "a.env", format: "raw", value: "secret-a.b" },
    ]);
  });

  it("pkiCert .Cert/.Key/.CA, and the set's own directory as the only one moves public up", async () => {
    const issue = '{{ with pkiCert "pki_int/issue/r" "common_name=x.example" }}';
    const { res, layout, root } = await imp({
      "agent.hcl": AUTH + tpl("/srv/certs/c.pem", `${issue}{{ .Cert }}{{ end }}`) + tpl("/srv/certs/k.pem", `${issue}{{ .Key }}{{ end }}`) + tpl("/srv/certs/ca.pem", `${issue}{{ .CA }}{{ end }}`),
    });
    expect(res.exitCode).toBe(0);
    expect(layout).toMatchObject({ paths: { public: `${root}/srv` }, outputs: [{ format: "pki", dir: "certs", mount: "pki_int", role: "r", files: { cert: "c.pem", key: "k.pem", ca: "ca.pem", fullchain: null } }] });
  });

  it("the agent's default removeSecretIdFile is true (with a note), approle mount, wrapping and sinks", async () => {
    const { res, layout } = await imp({
      "agent.hcl": `auto_auth {
  method "approle" {
    mount_path = "auth/apps"
    config = {
      role_id_file_path = "@ROOT@/etc/va/approle/role_id"
      secret_id_file_path = "@ROOT@/etc/va/secret_id"
      secret_id_response_wrapping_path = "auth/apps/role/x/secret-id"
    }
  }
  sink "file" {
    config = { path = "/tmp/token" }
  }
}
vault {
  address = "https://vault.example:8200"
  ca_cert = "ca.pem"
  tls_skip_verify = true
}
${tpl("/srv/app/a", '{{ with secret "secret/data/a" }}{{ .Data.data.b }}{{ end }}', '  perms = "0644"\n  command = "docker restart app"\n')}${tpl("/srv/app/b", '{{ with secret "secret/data/a" }}{{ .Data.data.c }}{{ end }}', '  perms = 0644\n  exec {\n    command = ["docker", "restart", "app"]\n    timeout = "30s"\n  }\n  error_on_missing_key = true\n')}${tpl("/srv/app/c", '{{ with secret "secret/data/a" }}{{ .Data.data.d }}{{ end }}', '  command = "docker restart app"\n')}`,
    });
    expect(res.refusals).toEqual([]);
    expect(layout).toMatchObject({
      vault: { address: "https://vault.example:8200", caCert: "ca.pem", skipVerify: true },
      auth: { approle: { mount: "apps", roleIdFile: "approle/role_id", secretIdFile: "secret_id", secretIdWrapped: true, removeSecretIdFile: true } },
      hooks: { "command-1": { command: "docker restart app", shell: true }, "command-2": { command: ["docker", "restart", "app"], timeout: "30s" } },
    });
    expect((layout?.outputs as { hooks: string[] }[]).map((o) => o.hooks)).toEqual([["command-1"], ["command-2"], ["command-1"]]);
    const texts = res.notes.map((n) => n.text);
    expect(texts.some((t) => t.includes("removeSecretIdFile: true"))).toBe(true);
    expect(texts.some((t) => t.startsWith("sink file"))).toBe(true);
    expect(texts.some((t) => t.includes("ca.pem is relative"))).toBe(true);
    expect(texts.filter((t) => t.includes("<no value>"))).toHaveLength(2);
  });

  it("paths.public is the common parent directory of all destinations", async () => {
    const { layout, root } = await imp({
      "agent.hcl": AUTH + tpl("/srv/app/a.env", '{{ with secret "secret/data/a" }}{{ .Data.data.b }}{{ end }}') + tpl("/srv/web/x/b", '{{ with secret "secret/data/a" }}{{ .Data.data.b }}{{ end }}'),
    });
    expect(layout).toMatchObject({ paths: { public: `${root}/srv` }, outputs: [{ file: "app/a.env" }, { file: "web/x/b" }] });
  });

  it("a consul-template config (JSON) gets default AppRole files beside the layout", async () => {
    const { res, layout, root } = await imp(
      {
        "ct.json": JSON.stringify({
          vault: { address: "https://v:8200", ssl: { verify: false, ca_cert: "/etc/ca.pem" }, renew_token: true },
          template: [{ destination: "@ROOT@/srv/a", contents: '{{ with secret "secret/data/a" }}{{ .Data.data.b }}{{ end }}' }],
        }),
      },
      { config: "ct.json" },
    );
    expect(res.exitCode).toBe(0);
    expect(layout).toMatchObject({
      vault: { address: "https://v:8200", caCert: "/etc/ca.pem", skipVerify: true },
      auth: { approle: { roleIdFile: "approle/role_id", secretIdFile: "approle/secret_id" } },
      paths: { agentOnly: `${root}/out/agent-only`, public: `${root}/srv` },
    });
    expect(res.notes.some((n) => n.text.startsWith("vault.renew_token"))).toBe(true);
  });
});

describe("import: refusals", () => {
  const one = async (body: string, more = "") => (await imp({ "agent.hcl": AUTH + tpl("/srv/app/a", body, more) })).res;
  const constructs = (r: ImportResult) => r.refusals.map((x) => x.construct);

  it.each([
    ["if", '{{ with secret "secret/data/a" }}{{ if .Data.data.b }}x{{ end }}{{ end }}', "if"],
    ["range outside the idiom", '{{ with secret "secret/data/a" }}# env\n{{ range $k, $v := .Data.data }}{{ $k }}={{ $v }}\n{{ end }}{{ end }}', "range"],
    ["variables", '{{ $x := "a" }}{{ with secret "secret/data/a" }}{{ .Data.data.b }}{{ end }}', "variables"],
    ["function env", '{{ env "HOME" }}', "function env"],
    ["function key", '{{ key "a/b" }}', "function key"],
    ["function printf", '{{ with secret "secret/data/a" }}{{ printf "%s" .Data.data.b }}{{ end }}', "function printf"],
    ["function index", '{{ with secret "secret/data/a" }}{{ index .Data.data "my-key" }}{{ end }}', "function index"],
    ["function sprig", '{{ with secret "secret/data/a" }}{{ .Data.data.b | sprig_upper }}{{ end }}', "function sprig_upper"],
    ["writeToFile", '{{ with secret "secret/data/a" }}{{ .Data.data.b | writeToFile "/x" "" "" "0644" }}{{ end }}', "function writeToFile"],
    [".Data.metadata", '{{ with secret "secret/data/a" }}{{ .Data.metadata.version }}{{ end }}', ".Data.metadata"],
    [".Data.data whole", '{{ with secret "secret/data/a" }}{{ .Data.data }}{{ end }}', ".Data.data"],
    ["nested with", '{{ with secret "secret/data/a" }}{{ with secret "secret/data/b" }}{{ .Data.data.b }}{{ end }}{{ end }}', "nested with"],
    ["else", '{{ with secret "secret/data/a" }}{{ .Data.data.b }}{{ else }}none{{ end }}', "else"],
  ])("%s", async (_name, body, construct) => {
    const r = await one(body);
    expect(constructs(r)).toContain(construct);
    expect(r.exitCode).toBe(1);
    expect(r.layout).toBeNull();
  });

  it("perms other than 0644, at the perms line of the config", async () => {
    const root = tree({ "agent.hcl": AUTH + tpl("/srv/app/a", '{{ with secret "secret/data/a" }}{{ .Data.data.b }}{{ end }}', "  perms = 0600\n") });
    const r = await runImport({ config: path.join(root, "agent.hcl"), out: path.join(root, "l.json"), partial: false, force: false });
    expect(r.refusals).toEqual([{ file: path.join(root, "agent.hcl"), line: 13, construct: "perms", reason: expect.stringContaining("0644") as string }]);
    expect(existsSync(path.join(root, "l.json"))).toBe(false);
  });

  it("template lines count from the contents heredoc in the config", async () => {
    const root = tree({ "agent.hcl": AUTH + tpl("/srv/app/a", 'x\n{{ with secret "secret/data/a" }}\n{{ if .Data.data.b }}{{ end }}{{ end }}\n') });
    const r = await runImport({ config: path.join(root, "agent.hcl"), out: path.join(root, "l.json"), partial: false, force: false });
    expect(r.refusals.map((x) => [x.line, x.construct])).toEqual([[15, "if"]]);
  });

  it("a source template's refusals name the template file and its line", async () => {
    const root = tree({ "agent.hcl": AUTH + `template {\n  source = "t/a.ctmpl"\n  destination = "@ROOT@/srv/a"\n}\n`, "t/a.ctmpl": "a\nb\n{{ env \"X\" }}\n" });
    const r = await runImport({ config: path.join(root, "agent.hcl"), out: path.join(root, "l.json"), partial: false, force: false });
    expect(r.refusals.map((x) => [x.file, x.line, x.construct])).toEqual([["t/a.ctmpl", 3, "function env"]]);
  });

  it.each([
    ["multiple methods", `auto_auth {\n  method "approle" {\n    config = { role_id_file_path = "/a/r"\n secret_id_file_path = "/a/s" }\n  }\n  method "kubernetes" {\n    config = { role = "x" }\n  }\n}\n`, 6],
    ["a method other than approle", `auto_auth {\n  method "kubernetes" {\n    config = { role = "x" }\n  }\n}\n`, 2],
    ["method { type = ... }", `auto_auth {\n  method {\n    type = "aws"\n  }\n}\n`, 2],
  ])("auto_auth: %s", async (_n, auth, line) => {
    const { res } = await imp({ "agent.hcl": auth + tpl("/srv/app/a", '{{ with secret "secret/data/a" }}{{ .Data.data.b }}{{ end }}') });
    expect(res.refusals.map((r) => [r.construct, r.line])).toEqual([["auto_auth.method", line]]);
  });

  it("the same PKI issue in two directories", async () => {
    const issue = '{{ with secret "pki/issue/web" "common_name=web.example.com" }}';
    const { res } = await imp({ "agent.hcl": AUTH + tpl("/srv/a/cert.pem", `${issue}{{ .Data.certificate }}{{ end }}`) + tpl("/srv/b/key.pem", `${issue}{{ .Data.private_key }}{{ end }}`) });
    expect(res.refusals.map((r) => r.construct)).toEqual(["pki set"]);
  });

  it("public and agent-only overlapping", async () => {
    const { res } = await imp({ "agent.hcl": AUTH + tpl("/etc/vault-agent/x/a", '{{ with secret "secret/data/a" }}{{ .Data.data.b }}{{ end }}') });
    expect(res.refusals.map((r) => r.construct)).toEqual(["paths"]);
  });

  it("--partial writes the rest, and exits 1 when nothing is left", async () => {
    const files = { "agent.hcl": AUTH + tpl("/srv/app/a", '{{ with secret "secret/data/a" }}{{ .Data.data.b }}{{ end }}') + tpl("/srv/app/b", '{{ env "X" }}') };
    const { res, layout } = await imp(files, { partial: true });
    expect(res.exitCode).toBe(0);
    expect(res.refusals).toHaveLength(1);
    expect(layout?.outputs).toEqual([{ file: "a", format: "raw", value: "secret-a.b" }]);
    const none = await imp({ "agent.hcl": AUTH + tpl("/srv/app/b", '{{ env "X" }}') }, { partial: true });
    expect(none.res.exitCode).toBe(1);
    expect(none.layout).toBeNull();
  });
});

describe("source names", () => {
  it("drop KV v2's data/, turn / into - and the rest into _, at most 64", () => {
    expect(sourceNameOf("secret/data/apps/web", true)).toBe("secret-apps-web");
    expect(sourceNameOf("database/creds/app", false)).toBe("database-creds-app");
    expect(sourceNameOf("kv/a.b:c", false)).toBe("kv-a_b_c");
    expect(sourceNameOf("x/" + "y".repeat(100), false)).toHaveLength(64);
  });
});
