/**
 * scripts/validate-crds.js against the operators' CRD schemas (../shared/reference/k8s-crds, or
 * VR_CRD_DIR): every manifest exported from the kept layouts validates (after the API server's
 * defaulting), and broken manifests fail it, so that it cannot pass vacuously. Skipped when the
 * CRD folder is absent (the script itself then says so and exits 0). Runs the built CLI.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../helpers.js";
import { scaled } from "../support/scale.js";

const crdDir = process.env.VR_CRD_DIR ? path.resolve(process.env.VR_CRD_DIR) : path.resolve(ROOT, "../shared/reference/k8s-crds");
const script = path.join(ROOT, "scripts/validate-crds.js");
const tmp = mkdtempSync(path.join(os.tmpdir(), "vr-crds-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function run(args: string[]) {
  const r = spawnSync(process.execPath, [script, ...args], { encoding: "utf8", env: { ...process.env, VR_CRD_DIR: crdDir } });
  return { code: r.status, out: r.stdout + r.stderr };
}

describe.skipIf(!existsSync(crdDir))("exported manifests against the CRD schemas", () => {
  it("every manifest of the example and the test layouts validates, both operators", { timeout: scaled(60_000) }, () => {
    const r = run([]);
    expect(r.out).toMatch(/validate-crds: \d+ manifests against 8 CRD schemas: 0 errors/);
    expect(Number(/(\d+) manifests/.exec(r.out)?.[1])).toBeGreaterThan(40);
    expect(r.code).toBe(0);
  });

  it("broken manifests fail, one line per error; defaults are applied before validation", () => {
    const file = path.join(tmp, "broken.yaml");
    writeFileSync(
      file,
      [
        "apiVersion: secrets.hashicorp.com/v1beta1\nkind: VaultStaticSecret\nmetadata: { name: broken }\nspec: { type: kv-v3, mount: secret, path: a, refreshAfter: 5 minutes, bogus: true }",
        "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: { name: es }\nspec: { target: { name: x, creationPolicy: Sometimes } }",
        "apiVersion: secrets.hashicorp.com/v1beta1\nkind: VaultDynamicSecret\nmetadata: { name: vds }\nspec: { mount: database, path: creds/x, renewalPercent: 95, destination: { name: x } }",
        "apiVersion: example.com/v1\nkind: Unknown\nmetadata: { name: u }\nspec: {}",
        // skipTLSVerify is required, with a default: valid once defaulted (as the API server does).
        "apiVersion: secrets.hashicorp.com/v1beta1\nkind: VaultConnection\nmetadata: { name: ok }\nspec: { address: https://vault:8200 }",
      ].join("\n---\n"),
    );
    const r = run([file]);
    expect(r.code).toBe(1);
    const lines = r.out.trimEnd().split("\n");
    expect(lines).toContain(`${path.relative(process.cwd(), file)}: VaultStaticSecret/broken: /spec must have required property 'destination'`);
    expect(r.out).toMatch(/VaultStaticSecret\/broken: \/spec must NOT have additional properties \(bogus\)/);
    expect(r.out).toMatch(/VaultStaticSecret\/broken: \/spec\/type must be equal to one of the allowed values/);
    expect(r.out).toMatch(/VaultStaticSecret\/broken: \/spec\/refreshAfter must match pattern/);
    expect(r.out).toMatch(/ExternalSecret\/es: \/spec\/target\/creationPolicy/);
    expect(r.out).toMatch(/VaultDynamicSecret\/vds: \/spec\/renewalPercent must be <= 90/);
    expect(r.out).toMatch(/Unknown\/u: no CRD serves example.com\/v1 Unknown/);
    expect(r.out).not.toMatch(/VaultConnection\/ok/);
    expect(r.out).toMatch(/validate-crds: 4 manifests against 4 CRD schemas: 7 errors/);
  });
});

describe.skipIf(existsSync(crdDir))("without the CRD schemas", () => {
  it("the script says it skipped and exits 0", () => {
    const r = run([]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/not found: skipped/);
  });
});
