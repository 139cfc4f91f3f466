/**
 * Crash safety (docs/reliability.md §1): kill -9 the real CLI at random moments of syncs that
 * change many files (the double slowed down to widen the window), then check: every public file
 * is the complete old or the complete new content at 0644, the state parses, and the next sync
 * converges with no temp file left and no still-valid certificate re-issued. A few random kills
 * here; the CI size (30, STRESS=1: 300) in crash.slow.test.ts.
 */
import { X509Certificate } from "node:crypto";
import { readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prepareTemp, FILE_MODE } from "../../src/core/fs/writer.js";
import { writeJournal } from "../../src/core/fs/journal.js";
import { pkiRequestHash } from "../../src/core/vault/pki.js";
import type { PkiOutput } from "../../src/core/layout/schema.js";
import type { Tree } from "../helpers.js";
import { OUTPUTS, checkAfterKill, checkCertSet, crashTree, expected, killTrials, layout, outputFile, putGen } from "./crash-fixture.js";
import { scaled, tempFiles } from "./support.js";

let t: Tree;
const gen = { n: 0 };
beforeAll(async () => {
  t = await crashTree();
}, scaled(30_000));
afterAll(async () => {
  await t?.cleanup();
});

describe("kill -9 during syncs that change many files", () => {
  /** Enough to meet each kind of trial twice: a forced rotation (i % 3 = 1), a request change (i % 4 = 3), a third run (i % 5 = 4). */
  const trials = 8;
  it(`${trials} random kills (every 3rd a forced certificate rotation, every 4th a certificate request change)`, () => killTrials(t, trials, gen), scaled(60_000));
});

describe("a certificate set commit interrupted after each rename", () => {
  it("rolls forward from the journal, records the new serial, and never re-issues", async () => {
    t.double.setLatency(0);
    await t.writeLayout(layout(true, "72h"));
    expect((await t.run(["sync"])).code).toBe(0);
    const parts = ["cert.pem", "key.pem", "ca.pem", "fullchain.pem"];
    for (let k = 0; k <= parts.length; k++) {
      // A new set, exactly as the CLI would have prepared it, from a real issue call.
      const res = await fetch(`${t.double.url}/v1/pki_int/issue/web`, { method: "POST", headers: { "X-Vault-Token": t.double.rootToken }, body: JSON.stringify({ common_name: "web.home.arpa", ttl: "259200s" }) });
      const d = ((await res.json()) as { data: { certificate: string; private_key: string; issuing_ca: string; ca_chain: string[]; serial_number: string } }).data;
      const bytes: Record<string, string> = {
        "cert.pem": d.certificate + "\n",
        "key.pem": d.private_key + "\n",
        "ca.pem": d.ca_chain.map((c) => c + "\n").join(""),
        "fullchain.pem": d.certificate + "\n" + d.ca_chain.map((c) => c + "\n").join(""),
      };
      const renames: Array<[string, string]> = [];
      for (const p of parts) {
        const abs = path.join(t.publicDir, "certs/web", p);
        renames.push([await prepareTemp(abs, Buffer.from(bytes[p] as string), FILE_MODE), abs]);
      }
      const serial = new X509Certificate(d.certificate).serialNumber;
      const hmacKey = await readFile(path.join(t.agentDir, "state.key"));
      const spec = (layout(true, "72h").outputs as PkiOutput[])[0] as PkiOutput;
      const leaf = new X509Certificate(d.certificate);
      const pkiRec = { serial, notAfter: Date.parse(leaf.validTo), notBefore: Date.parse(leaf.validFrom), requestHash: pkiRequestHash(hmacKey, spec), issuedAt: new Date().toISOString() };
      await writeJournal(t.agentDir, { renames, state: { pki: { "certs/web": pkiRec } } });
      for (const [tmp, target] of renames.slice(0, k)) await rename(tmp, target);
      const issuedBefore = t.double.pkiIssued("pki_int").length;
      const r = await t.run(["sync", "-v"]);
      expect(r.code).toBe(0);
      if (k < parts.length) expect(r.stderr).toMatch(/completed an interrupted certificate set commit/);
      expect(await checkCertSet(t)).toBe(serial);
      expect(r.stderr).not.toMatch(/issued a certificate/);
      const state = JSON.parse(await readFile(path.join(t.agentDir, "state.json"), "utf8")) as { pki: Record<string, { serial: string }> };
      expect(state.pki["certs/web"]?.serial).toBe(serial);
      expect(await tempFiles(t.dir)).toEqual([]);
      expect(t.double.pkiIssued("pki_int").length - issuedBefore).toBe(0);
    }
  });
});

describe("kill at the writer boundary (VAULT_RENDER_TEST_FAULT=kill:)", () => {
  it("a kill while writing a temp file leaves the old file and no temp after the next sync", async () => {
    await t.writeLayout(layout(false, "72h"));
    expect((await t.run(["sync"])).code).toBe(0);
    const oldGen = gen.n;
    putGen(t, ++gen.n);
    for (const part of ["f0.raw", "f21.env", "f39.template"]) {
      const r = await t.run(["sync"], { env: { VAULT_RENDER_TEST_FAULT: `kill:${part}` } });
      expect(r.signal).toBe("SIGKILL");
      // The killed write's temp, and those of the other outputs being written alongside it
      // (vault.concurrency, default 8, at a time): one per output in flight at most.
      const temps = (await tempFiles(t.publicDir)).length;
      expect(temps).toBeGreaterThanOrEqual(1);
      expect(temps).toBeLessThanOrEqual(8);
      await checkAfterKill(t, oldGen, gen.n, `kill:${part}`, false);
    }
    // A temp left in agent-only/ by a run killed while saving its state or token.
    await writeFile(path.join(t.agentDir, ".vault-render.tmp-999999-0badc0ffee00"), "{\"half");
    const r = await t.run(["sync"]);
    expect(r.code).toBe(0);
    expect(await tempFiles(t.dir)).toEqual([]);
    for (let o = 0; o < OUTPUTS; o++) expect(await readFile(path.join(t.publicDir, outputFile(o)), "utf8")).toBe(expected(o, gen.n));
  });
});
