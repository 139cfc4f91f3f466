/**
 * PKI certificate sets. Whether a set is due is decided from the certificate actually on disk
 * (node's X509Certificate), never from memory or from a token change. An issued set is verified
 * (key matches certificate, certificate signed by the returned issuer) before anything is written.
 */
import { X509Certificate, createPrivateKey } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { VrError } from "../support/errors.js";
import { parseDuration } from "../support/duration.js";
import type { PkiPart } from "../layout/outputs.js";
import { pkiFiles } from "../layout/outputs.js";
import type { PkiOutput } from "../layout/schema.js";
import { keyedHash } from "../state/state.js";
import type { VaultClient } from "./client.js";

export interface PkiSet {
  files: Partial<Record<PkiPart, Buffer>>;
  serial: string;
  notAfter: number;
  notBefore: number;
  /** Secret material to redact (the private key). */
  privateKey: string;
  /** The non-secret parts, recorded in state so the set can be repaired without a new issue. */
  cert: string;
  chain: string;
}

function pkiRequestBody(o: PkiOutput): Record<string, unknown> {
  const body: Record<string, unknown> = { common_name: o.commonName, format: "pem" };
  if (o.altNames?.length) body.alt_names = o.altNames.join(",");
  if (o.ipSans?.length) body.ip_sans = o.ipSans.join(",");
  if (o.ttl) body.ttl = `${Math.round(parseDuration(o.ttl) / 1000)}s`;
  if (o.privateKeyFormat) body.private_key_format = o.privateKeyFormat;
  return body;
}

/** A keyed hash of what the layout asks for: a change of request parameters makes the set due. */
export function pkiRequestHash(key: Buffer, o: PkiOutput): string {
  return keyedHash(key, JSON.stringify({ mount: o.mount, role: o.role, ...pkiRequestBody(o) }));
}

function renewBeforeMs(o: PkiOutput, cert: X509Certificate): number {
  const rb = o.renewBefore ?? 0.33;
  if (typeof rb === "number") return rb * (Date.parse(cert.validTo) - Date.parse(cert.validFrom));
  return parseDuration(rb);
}

/**
 * The one reader of a set's leaf certificate on disk: the cert file, or the first certificate of
 * the full chain. "missing": no such file (or no leaf file in the set); "unreadable": another read
 * error; "unparsable": not a certificate. (pki-set.ts parses the bytes it read without following links.)
 */
export async function readLeaf(publicDir: string, files: Partial<Record<PkiPart, string>>): Promise<X509Certificate | "missing" | "unreadable" | "unparsable"> {
  const rel = files.cert ?? files.fullchain;
  if (!rel) return "missing";
  let pem: string;
  try {
    pem = await readFile(path.join(publicDir, rel), "utf8");
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ENOENT" ? "missing" : "unreadable";
  }
  try {
    return new X509Certificate(pem);
  } catch {
    return "unparsable";
  }
}

/** Why the set must be (re-)issued now, or null when the certificate on disk is good. */
export async function pkiDueReason(o: PkiOutput, publicDir: string, now: number, recordedRequestHash: string | undefined, requestHash: string): Promise<string | null> {
  const files = pkiFiles(o);
  const leaf = await readLeaf(publicDir, files);
  if (leaf === "missing" || leaf === "unreadable") return "no certificate on disk";
  if (leaf === "unparsable") return "the certificate on disk cannot be parsed";
  const notAfter = Date.parse(leaf.validTo);
  if (notAfter <= now) return "the certificate has expired";
  if (notAfter - now <= renewBeforeMs(o, leaf)) return `within renewBefore (expires ${new Date(notAfter).toISOString()})`;
  if (recordedRequestHash !== undefined && recordedRequestHash !== requestHash) return "the layout's request parameters changed";
  if (recordedRequestHash === undefined) return "no record of how the certificate on disk was requested";
  if (files.key) {
    try {
      const key = createPrivateKey(await readFile(path.join(publicDir, files.key)));
      if (!leaf.checkPrivateKey(key)) return "the key on disk does not match the certificate";
    } catch {
      return "the key on disk is missing or cannot be parsed";
    }
  }
  // ca.pem and fullchain.pem are not a reason to re-issue: they are rebuilt from the recorded
  // issue (pki-set.ts), or the set is re-issued there when they cannot be.
  return null;
}

export const pemBlock = (s: string) => (s.endsWith("\n") ? s : s + "\n");

/** One issue call; the answer is verified before it can be written. */
export async function issueSet(client: VaultClient, o: PkiOutput): Promise<PkiSet> {
  const where = `${o.mount}/issue/${o.role}`;
  // Each issue call makes a certificate: retried only when it cannot have reached Vault.
  const res = await client.write(where, pkiRequestBody(o), { sideEffect: true });
  const d = (res.data ?? {}) as { certificate?: unknown; private_key?: unknown; issuing_ca?: unknown; ca_chain?: unknown; serial_number?: unknown };
  if (typeof d.certificate !== "string" || typeof d.private_key !== "string" || typeof d.issuing_ca !== "string") {
    throw new VrError("RENDER", `${o.dir}: ${where} answered without certificate, private_key and issuing_ca`);
  }
  let leaf: X509Certificate;
  let issuer: X509Certificate;
  try {
    leaf = new X509Certificate(d.certificate);
    issuer = new X509Certificate(d.issuing_ca);
  } catch {
    throw new VrError("RENDER", `${o.dir}: ${where} returned a certificate that cannot be parsed; the last good set was kept`);
  }
  let keyOk = false;
  try {
    keyOk = leaf.checkPrivateKey(createPrivateKey(d.private_key));
  } catch {
    keyOk = false;
  }
  if (!keyOk) {
    throw new VrError("RENDER", `${o.dir}: the private key returned by ${where} does not match its certificate (serial ${leaf.serialNumber}); nothing was written, the last good set was kept`);
  }
  if (!leaf.checkIssued(issuer) || !leaf.verify(issuer.publicKey)) {
    throw new VrError("RENDER", `${o.dir}: the certificate from ${where} is not signed by the issuing CA it came with; the last good set was kept`);
  }
  const chain = Array.isArray(d.ca_chain) && d.ca_chain.every((c) => typeof c === "string") && d.ca_chain.length > 0 ? (d.ca_chain) : [d.issuing_ca];
  const chainPem = chain.map(pemBlock).join("");
  const parts = pkiFiles(o);
  const files: Partial<Record<PkiPart, Buffer>> = {};
  if (parts.cert) files.cert = Buffer.from(pemBlock(d.certificate));
  if (parts.key) files.key = Buffer.from(pemBlock(d.private_key));
  if (parts.ca) files.ca = Buffer.from(chainPem);
  if (parts.fullchain) files.fullchain = Buffer.from(pemBlock(d.certificate) + chainPem);
  return {
    files,
    serial: leaf.serialNumber,
    notAfter: Date.parse(leaf.validTo),
    notBefore: Date.parse(leaf.validFrom),
    privateKey: d.private_key,
    cert: pemBlock(d.certificate),
    chain: chainPem,
  };
}
