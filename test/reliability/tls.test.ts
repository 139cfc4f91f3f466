/**
 * TLS (docs/reliability.md §8): the double over HTTPS with its own CA, made by the openssl CLI.
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startVaultDouble } from "../../src/double/vault-double.js";
import type { VaultDouble } from "../../src/double/vault-double.js";
import { baseLayout, makeTree } from "../helpers.js";
import type { Tree } from "../helpers.js";
import { STACK_RE, scaled } from "./support.js";

let dir = "";
let double: VaultDouble;
let t: Tree;

function openssl(args: string[]) {
  execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
}
function makeCa(name: string) {
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "2", "-subj", `/CN=${name}`, "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "vr-tls-"));
  makeCa("ca");
  makeCa("other-ca");
  openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
  await writeFile(path.join(dir, "ext.cnf"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
  openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf"]);
  double = await startVaultDouble({ tls: { cert: await readFile(path.join(dir, "server.pem"), "utf8"), key: await readFile(path.join(dir, "server.key"), "utf8") } });
  t = await makeTree({ double, mode: "in-process" });
  t.double.kvPut("secret", "app", { password: "tls-secret" });
}, scaled(30_000));
afterAll(async () => {
  await t?.cleanup();
  await double?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("TLS", () => {
  it("the double speaks https", () => {
    expect(double.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it("VAULT_CACERT with the right CA works", async () => {
    const r = await t.run(["sync"], { env: { VAULT_CACERT: path.join(dir, "ca.pem") } });
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(await readFile(path.join(t.publicDir, "app.env"), "utf8")).toBe("DB_PASSWORD='tls-secret'\n");
  });

  it("the layout's vault.caCert works", async () => {
    await t.writeLayout(baseLayout({ vault: { caCert: path.join(dir, "ca.pem") } }));
    double.kvPut("secret", "app", { password: "tls-secret-2" });
    const r = await t.run(["sync"]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(await readFile(path.join(t.publicDir, "app.env"), "utf8")).toBe("DB_PASSWORD='tls-secret-2'\n");
  });

  it.each([
    ["no CA at all", {}],
    ["a wrong CA (VAULT_CACERT)", { VAULT_CACERT: "other-ca.pem" }],
    ["VAULT_SKIP_VERIFY=false still verifies", { VAULT_SKIP_VERIFY: "false" }],
    ["VAULT_SKIP_VERIFY=0 still verifies", { VAULT_SKIP_VERIFY: "0" }],
  ])("%s: exit 3, one clear line naming the address and the fix, files untouched", async (_name, env: Record<string, string>) => {
    await t.writeLayout(baseLayout());
    const before = await readFile(path.join(t.publicDir, "app.env"), "utf8");
    double.kvPut("secret", "app", { password: "tls-secret-3" });
    const e = { ...env };
    if (e.VAULT_CACERT) e.VAULT_CACERT = path.join(dir, e.VAULT_CACERT);
    const r = await t.run(["sync"], { env: e });
    expect(r.code).toBe(3);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(new RegExp(`TLS verification of ${double.url.replace(/\./g, "\\.")} failed \\([A-Z_]+\\) \\(hint: set VAULT_CACERT or vault\\.caCert`));
    expect(r.stderr).not.toMatch(STACK_RE);
    expect(await readFile(path.join(t.publicDir, "app.env"), "utf8")).toBe(before);
  });

  it("a wrong CA in the layout fails the same way", async () => {
    await t.writeLayout(baseLayout({ vault: { caCert: path.join(dir, "other-ca.pem") } }));
    const r = await t.run(["sync"]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/TLS verification of https:\/\/127\.0\.0\.1:\d+ failed/);
  });

  it("an https:// address answered by plain HTTP says so, not \"verification failed\"", async () => {
    const plain = await startVaultDouble();
    const p = await makeTree({ double: plain, mode: "in-process" });
    try {
      const host = plain.url.replace(/^http:\/\//, "");
      const r = await p.run(["sync"], { env: { VAULT_ADDR: `https://${host}` } });
      expect(r.code).toBe(3);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain(`the server at ${host} speaks plain HTTP, not TLS (`);
      expect(r.stderr).toContain(`(hint: use http://${host} as the address (VAULT_ADDR or vault.address), or enable TLS on its listener)`);
      expect(r.stderr).not.toMatch(/verification/);
    } finally {
      await p.cleanup();
      await plain.close();
    }
  });

  it("VAULT_SKIP_VERIFY=true connects and warns on every run; layout skipVerify too", async () => {
    await t.writeLayout(baseLayout());
    for (let i = 0; i < 2; i++) {
      double.kvPut("secret", "app", { password: `skip-${i}` });
      const r = await t.run(["sync"], { env: { VAULT_SKIP_VERIFY: "true" } });
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/^vault-render: warn: TLS verification of Vault is DISABLED \(skip-verify\)/);
      expect(await readFile(path.join(t.publicDir, "app.env"), "utf8")).toBe(`DB_PASSWORD='skip-${i}'\n`);
    }
    await t.writeLayout(baseLayout({ vault: { skipVerify: true } }));
    const r = await t.run(["sync"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/TLS verification of Vault is DISABLED/);
    // The environment wins over the layout, as with the official CLI.
    const r2 = await t.run(["sync"], { env: { VAULT_SKIP_VERIFY: "false" } });
    expect(r2.code).toBe(3);
    expect(r2.stderr).not.toMatch(/DISABLED/);
  });
});
