/**
 * The exported manifests: YAML that parses back to objects fitting the project's own description of
 * each kind (src/core/export/fields.ts), deterministic, with the conversions the brief asks for
 * (renewalPercent's direction, expiryOffset from a fraction, names) and the CLI's exit codes.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import YAML from "yaml";
import { afterAll, describe, expect, it } from "vitest";
import { exportLayout, runExport } from "../../src/core/export/export.js";
import { checkEmitted } from "../../src/core/export/fields.js";
import { renewalPercent } from "../../src/core/export/model.js";
import { NameSet, dnsLabel, goDuration } from "../../src/core/export/names.js";
import { loadLayout } from "../../src/core/layout/load.js";
import { ROOT, runInProcess } from "../helpers.js";
import { LAYOUTS } from "./operators.js";

const EXAMPLE = path.join(ROOT, "vault-layout.example.json");
const FEATURES = path.join(ROOT, "test/export/layouts/features.json");
const tmp = mkdtempSync(path.join(os.tmpdir(), "vr-export-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function exported(file: string, to: "vso" | "eso") {
  return runExport({ layoutFile: file, env: {}, to, intervalMs: 300_000, partial: true });
}

describe.each(["vso", "eso"] as const)("--to %s manifests", (to) => {
  it.each(LAYOUTS.map((f) => [path.basename(f), f]))("%s: every document parses and fits the description of its kind", async (_n, f) => {
    const res = await exported(f, to);
    const docs = YAML.parseAllDocuments(res.text);
    expect(docs.every((d) => d.errors.length === 0)).toBe(true);
    expect(docs.length).toBe(res.manifests.length);
    expect(docs.length).toBeGreaterThan(4);
    for (const d of docs) expect(checkEmitted(d.toJS()), YAML.stringify(d.toJS()).slice(0, 200)).toEqual([]);
  });

  it("is deterministic (same text twice) and names are unique DNS-1123 labels", async () => {
    const a = await exported(FEATURES, to);
    const b = await exported(FEATURES, to);
    expect(a.text).toBe(b.text);
    const names = a.manifests.map((m) => `${m.object.kind}/${m.object.metadata.name}`);
    expect(new Set(names).size).toBe(names.length);
  });
});

describe("the description is strict (a manifest outside it fails)", () => {
  it("rejects an unknown field, a wrong type and an out-of-range value", async () => {
    const res = await exported(FEATURES, "vso");
    const vss = res.manifests.find((m) => m.object.kind === "VaultStaticSecret")?.object;
    const vds = res.manifests.find((m) => m.object.kind === "VaultDynamicSecret" && (m.object.spec as { renewalPercent?: number }).renewalPercent !== undefined)?.object;
    expect(vss && vds).toBeTruthy();
    expect(checkEmitted(vss)).toEqual([]);
    expect(checkEmitted({ ...vss, spec: { ...vss?.spec, refreshAfter: "5 minutes" } })).not.toEqual([]);
    expect(checkEmitted({ ...vss, spec: { ...vss?.spec, hmac: true } })).not.toEqual([]);
    expect(checkEmitted({ ...vds, spec: { ...vds?.spec, renewalPercent: 95 } })).not.toEqual([]);
    expect(checkEmitted({ ...vss, kind: "VaultSecret" })).not.toEqual([]);
  });
});

describe("conversions", () => {
  it("renewalPercent is the share of the lease ELAPSED when VSO renews: 1 − renewBefore", () => {
    // renewBefore 0.25 = renew when a quarter is left = at 75% elapsed.
    expect(renewalPercent(0.25)).toEqual({ percent: 75 });
    expect(renewalPercent(0.7)).toEqual({ percent: 30 });
    expect(renewalPercent(undefined)).toEqual({ percent: 50 }); // vault-render's default 0.5
    expect(renewalPercent(0.02).percent).toBe(90); // VSO's maximum
    expect(renewalPercent(0.02).why).toMatch(/at most 90/);
    expect(renewalPercent("10m").percent).toBeUndefined();
  });

  it("in the features layout: lease renewBefore 0.25 → renewalPercent 75; PKI renewBefore 0.25 of ttl 72h → expiryOffset 18h", async () => {
    const res = await exported(FEATURES, "vso");
    const vds = res.manifests.find((m) => m.object.metadata.name === "lease-db-env")?.object.spec as { renewalPercent: number };
    expect(vds.renewalPercent).toBe(75);
    const pki = res.manifests.find((m) => m.object.kind === "VaultPKISecret")?.object.spec as { expiryOffset: string; ttl: string };
    expect(pki).toMatchObject({ expiryOffset: "18h", ttl: "72h" });
  });

  it("the example: PKI expiryOffset 240h, KV version pinned only where the layout pins it, refreshAfter from --interval", async () => {
    const layout = await loadLayout(EXAMPLE, {});
    const res = await exportLayout(layout, { to: "vso", intervalMs: 90_000 });
    const byName = (n: string) => res.manifests.find((m) => m.object.metadata.name === n)?.object.spec as Record<string, unknown>;
    expect(byName("traefik-certs")).toMatchObject({ expiryOffset: "240h", commonName: "traefik.home.arpa", ipSans: ["192.168.1.10"] });
    expect(byName("traefik-users-htpasswd")).toMatchObject({ version: 3, type: "kv-v2", refreshAfter: "90s" });
    expect(byName("postgres-password").version).toBeUndefined();
    expect(res.skipped).toBe(1); // nextcloud.env draws on three sources
  });

  it("a validate command (issue 14's third part) is dropped with a finding, for both operators", async () => {
    for (const to of ["vso", "eso"] as const) {
      const layout = await loadLayout(EXAMPLE, {});
      Object.assign(layout.outputs[0] as object, { validate: ["test", "-s", "{}"] });
      const res = await exportLayout(layout, { to, intervalMs: 300_000 });
      expect(res.findings.filter((f) => /validate command dropped/.test(f.why)).map((f) => f.where)).toEqual(["outputs[0] (postgres/password)"]);
    }
  });

  it("names and durations", () => {
    expect(dnsLabel("nextcloud/Nextcloud.env")).toBe("nextcloud-nextcloud-env");
    expect(dnsLabel("---")).toBe("x");
    expect(dnsLabel("a".repeat(80))).toHaveLength(63);
    const n = new NameSet();
    expect([n.claim("a/b"), n.claim("a.b"), n.claim("A_B")]).toEqual(["a-b", "a-b-2", "a-b-3"]);
    expect([goDuration(300_000), goDuration(3_600_000 * 240), goDuration(90_500)]).toEqual(["5m", "240h", "90.5s"]);
  });
});

describe("vault-render export (CLI)", () => {
  const lineRe = /^vault-render: export: (outputs\[\d+\] \(.+?\)|sources\.\S+|vault\.\S+|auth\.\S+): \S/;

  it("--to vso of the example: an output VSO cannot express → exit 1, nothing on stdout, a finding naming the alternative", async () => {
    const r = await runInProcess(["export", "--to", "vso", "-l", EXAMPLE]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^vault-render: export: outputs\[1\] \(nextcloud\/nextcloud\.env\): draws on 3 sources .*; instead: --to eso/m);
    for (const l of r.stderr.trimEnd().split("\n")) expect(l).toMatch(lineRe);
  });

  it("--partial prints the rest (exit 0); --to eso needs no --partial", async () => {
    const p = await runInProcess(["export", "--to", "vso", "--partial", "-l", EXAMPLE, "--namespace", "homelab"]);
    expect(p.code).toBe(0);
    expect(p.stdout).toContain("kind: VaultStaticSecret");
    expect(p.stdout).not.toContain("name: nextcloud-nextcloud-env");
    expect(YAML.parseAllDocuments(p.stdout).every((d) => (d.toJS() as { metadata: { namespace: string } }).metadata.namespace === "homelab")).toBe(true);
    const e = await runInProcess(["export", "--to", "eso", "-l", EXAMPLE]);
    expect(e.code).toBe(0);
    expect(e.stdout).toContain("name: nextcloud-nextcloud-env");
  });

  it("--out writes the file (stdout empty); usage errors exit 2", async () => {
    const out = path.join(tmp, "m.yaml");
    const r = await runInProcess(["export", "--to", "eso", "-l", EXAMPLE, "--out", out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    expect(readFileSync(out, "utf8")).toBe((await exported(EXAMPLE, "eso")).text);
    for (const bad of [["--to", "k8s"], [], ["--to", "vso", "--interval", "0"], ["--to", "vso", "--namespace", "Bad_NS"]]) {
      const u = await runInProcess(["export", "-l", EXAMPLE, ...bad]);
      expect(u.code, bad.join(" ")).toBe(2);
      expect(u.stdout).toBe("");
    }
  });
});
