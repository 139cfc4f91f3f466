/**
 * Real X.509 certificates for the Vault test double's PKI engine, built with node:crypto only:
 * a tiny DER encoder, a root + intermediate CA hierarchy (EC P-256, so it can be created
 * synchronously in well under a millisecond) and leaf certificates signed by the intermediate.
 *
 * Certificates carry the double's clock (notBefore/notAfter are whatever the caller passes), so
 * `advanceTime` makes later certificates look newer to code that trusts the double's clock.
 * Leaf RSA keys take ~100 ms to generate; a small background pool per key spec keeps issuance fast.
 */
import { createHash, generateKeyPair, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { isIP } from "node:net";

// ---------------------------------------------------------------------------------------------
// DER

function derLen(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let x = n; x > 0; x = Math.floor(x / 256)) bytes.unshift(x & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), derLen(content.length), content]);
}

const seq = (...parts: Buffer[]): Buffer => tlv(0x30, Buffer.concat(parts));
const set = (...parts: Buffer[]): Buffer => tlv(0x31, Buffer.concat(parts));
const explicit = (n: number, content: Buffer): Buffer => tlv(0xa0 + n, content);
const octet = (b: Buffer): Buffer => tlv(0x04, b);
const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, "utf8"));
const bool = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0x00]));
const bitString = (b: Buffer, unused = 0): Buffer => tlv(0x03, Buffer.concat([Buffer.from([unused]), b]));

function oid(dotted: string): Buffer {
  const parts = dotted.split(".").map(Number);
  const out: number[] = [40 * (parts[0] as number) + (parts[1] as number)];
  for (const p of parts.slice(2)) {
    const chunk: number[] = [p & 0x7f];
    for (let x = Math.floor(p / 128); x > 0; x = Math.floor(x / 128)) chunk.unshift(0x80 | (x & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** A non-negative INTEGER from big-endian magnitude bytes. */
function uint(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  let v = b.subarray(i);
  if (((v[0] ?? 0) & 0x80) !== 0) v = Buffer.concat([Buffer.from([0]), v]);
  return tlv(0x02, v.length ? v : Buffer.from([0]));
}

/** UTCTime for 1950..2049, GeneralizedTime otherwise (RFC 5280 §4.1.2.5). Whole seconds. */
function derTime(ms: number): Buffer {
  const iso = new Date(Math.floor(ms / 1000) * 1000).toISOString(); // YYYY-MM-DDTHH:MM:SS.000Z
  const y = Number(iso.slice(0, 4));
  const rest = iso.slice(5, 7) + iso.slice(8, 10) + iso.slice(11, 13) + iso.slice(14, 16) + iso.slice(17, 19) + "Z";
  if (y >= 1950 && y < 2050) return tlv(0x17, Buffer.from(iso.slice(2, 4) + rest, "ascii"));
  return tlv(0x18, Buffer.from(iso.slice(0, 4) + rest, "ascii"));
}

const OID = {
  cn: "2.5.4.3",
  o: "2.5.4.10",
  ecdsaSha256: "1.2.840.10045.4.3.2",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  ski: "2.5.29.14",
  aki: "2.5.29.35",
  san: "2.5.29.17",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
};

function name(cn: string, org?: string): Buffer {
  const rdns: Buffer[] = [];
  if (org) rdns.push(set(seq(oid(OID.o), utf8(org))));
  if (cn) rdns.push(set(seq(oid(OID.cn), utf8(cn))));
  return seq(...rdns);
}

function ext(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), bool(true), octet(value)) : seq(oid(id), octet(value));
}

/** KeyUsage bits (0 = digitalSignature ... 6 = cRLSign) as a DER BIT STRING value. */
function keyUsage(bits: number[]): Buffer {
  let byte = 0;
  for (const b of bits) byte |= 0x80 >> b;
  let unused = 0;
  while (unused < 7 && (byte & (1 << unused)) === 0) unused++;
  return bitString(Buffer.from([byte]), unused);
}

function pem(label: string, der: Buffer): string {
  const b64 = der.toString("base64").replace(/(.{64})/g, "$1\n").replace(/\n$/, "");
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----`;
}

function spki(key: KeyObject): Buffer {
  return key.export({ type: "spki", format: "der" });
}

function keyId(key: KeyObject): Buffer {
  return createHash("sha1").update(spki(key)).digest();
}

// ---------------------------------------------------------------------------------------------
// Certificates

interface CaCert {
  pem: string;
  der: Buffer;
  key: KeyObject;
  keyId: Buffer;
  subject: Buffer;
  notAfterMs: number;
  serial: string;
}

export interface CaHierarchy {
  root: CaCert;
  intermediate: CaCert;
}

interface TbsInput {
  serial: Buffer;
  issuer: Buffer;
  subject: Buffer;
  notBeforeMs: number;
  notAfterMs: number;
  publicKey: KeyObject;
  extensions: Buffer[];
  signer: KeyObject;
}

/** Signs with an EC P-256 CA key (ecdsa-with-SHA256). */
function buildCert(t: TbsInput): Buffer {
  const alg = seq(oid(OID.ecdsaSha256));
  const tbs = seq(
    explicit(0, uint(Buffer.from([2]))),
    uint(t.serial),
    alg,
    t.issuer,
    seq(derTime(t.notBeforeMs), derTime(t.notAfterMs)),
    t.subject,
    spki(t.publicKey),
    explicit(3, seq(...t.extensions)),
  );
  const sig = sign("sha256", tbs, t.signer);
  return seq(tbs, alg, bitString(sig));
}

/** 20 random bytes, positive, without a leading zero byte (Vault's 159-bit serials). */
function randomSerial(): Buffer {
  const b = randomBytes(20);
  b[0] = ((b[0] as number) & 0x7f) | 0x01;
  return b;
}

/** Colon-separated lowercase hex pairs, as Vault reports `serial_number`. */
function formatSerial(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
}

/** Root (10 years) and intermediate (5 years) CAs, valid from one hour before `nowMs`. */
export function createCaHierarchy(label: string, nowMs: number): CaHierarchy {
  const year = 365 * 86400 * 1000;
  const notBeforeMs = nowMs - 3600 * 1000;
  const mk = (cn: string, years: number, pathLen: number, parent?: CaCert): CaCert => {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const subject = name(cn, "vault-double");
    const kid = keyId(publicKey);
    const serial = randomSerial();
    const extensions = [
      ext(OID.basicConstraints, true, seq(bool(true), uint(Buffer.from([pathLen])))),
      ext(OID.keyUsage, true, keyUsage([0, 5, 6])),
      ext(OID.ski, false, octet(kid)),
    ];
    if (parent) extensions.push(ext(OID.aki, false, seq(tlv(0x80, parent.keyId))));
    const notAfterMs = nowMs + years * year;
    const der = buildCert({
      serial,
      issuer: parent ? parent.subject : subject,
      subject,
      notBeforeMs,
      notAfterMs,
      publicKey,
      extensions,
      signer: parent ? parent.key : privateKey,
    });
    return { pem: pem("CERTIFICATE", der), der, key: privateKey, keyId: kid, subject, notAfterMs: Math.floor(notAfterMs / 1000) * 1000, serial: formatSerial(serial) };
  };
  const root = mk(`${label} Root CA`, 10, 1);
  const intermediate = mk(`${label} Intermediate CA`, 5, 0, root);
  return { root, intermediate };
}

/** IPv4/IPv6 text → 4 or 16 bytes (IPv4-mapped IPv6 becomes 4 bytes, as Go's x509 does). */
export function ipBytes(s: string): Buffer | undefined {
  const v = isIP(s);
  if (v === 4) return Buffer.from(s.split(".").map(Number));
  if (v !== 6) return undefined;
  let text = s.replace(/%.*$/, "");
  let tail: number[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    tail = (dotted[1] as string).split(".").map(Number);
    text = text.slice(0, -(dotted[1] as string).length) + "0:0";
  }
  const [head, rest] = text.includes("::") ? (text.split("::") as [string, string]) : [text, undefined];
  const h = head ? head.split(":") : [];
  const r = rest !== undefined && rest !== "" ? rest.split(":") : [];
  const groups = rest === undefined ? h : [...h, ...Array<string>(8 - h.length - r.length).fill("0"), ...r];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  if (tail.length) Buffer.from(tail).copy(out, 12);
  const mapped = out.subarray(0, 10).every((x) => x === 0) && out[10] === 0xff && out[11] === 0xff;
  return mapped ? out.subarray(12) : out;
}

export interface LeafInput {
  commonName: string;
  dnsNames: string[];
  ipAddresses: Buffer[];
  notBeforeMs: number;
  notAfterMs: number;
  publicKey: KeyObject;
  issuer: CaCert;
}

/** A TLS server/client leaf signed by `issuer`. */
export function signLeaf(l: LeafInput): { der: Buffer; pem: string; serial: string; notAfterMs: number } {
  const serial = randomSerial();
  const sans = [...l.dnsNames.map((d) => tlv(0x82, Buffer.from(d, "ascii"))), ...l.ipAddresses.map((ip) => tlv(0x87, ip))];
  const extensions = [
    ext(OID.keyUsage, true, keyUsage([0, 2, 4])),
    ext(OID.extKeyUsage, false, seq(oid(OID.serverAuth), oid(OID.clientAuth))),
    ext(OID.basicConstraints, true, seq()),
    ext(OID.ski, false, octet(keyId(l.publicKey))),
    ext(OID.aki, false, seq(tlv(0x80, l.issuer.keyId))),
  ];
  if (sans.length) extensions.push(ext(OID.san, false, seq(...sans)));
  const der = buildCert({
    serial,
    issuer: l.issuer.subject,
    subject: name(l.commonName),
    notBeforeMs: l.notBeforeMs,
    notAfterMs: l.notAfterMs,
    publicKey: l.publicKey,
    extensions,
    signer: l.issuer.key,
  });
  return { der, pem: pem("CERTIFICATE", der), serial: formatSerial(serial), notAfterMs: Math.floor(l.notAfterMs / 1000) * 1000 };
}

// ---------------------------------------------------------------------------------------------
// Keys

export type KeyType = "rsa" | "ec";

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

const EC_CURVES: Record<number, string> = { 224: "P-224", 256: "P-256", 384: "P-384", 521: "P-521" };

/** Validates a role's key spec and fills Vault's defaults (rsa 2048, ec 256). */
export function keySpec(type: KeyType | undefined, bits: number | undefined): { type: KeyType; bits: number } {
  const t = type ?? "rsa";
  if (t === "rsa") {
    const b = bits || 2048;
    if (![2048, 3072, 4096, 8192].includes(b)) throw new Error(`unsupported bit length for RSA key: ${b}`);
    return { type: t, bits: b };
  }
  if (t === "ec") {
    const b = bits || 256;
    if (!EC_CURVES[b]) throw new Error(`unsupported bit length for EC key: ${b}`);
    return { type: t, bits: b };
  }
  throw new Error(`unknown key type ${String(t)}`);
}

function genKey(type: KeyType, bits: number): Promise<KeyPair> {
  return new Promise((resolve, reject) => {
    const cb = (e: Error | null, publicKey: KeyObject, privateKey: KeyObject): void => (e ? reject(e) : resolve({ publicKey, privateKey }));
    if (type === "rsa") generateKeyPair("rsa", { modulusLength: bits }, cb);
    else generateKeyPair("ec", { namedCurve: EC_CURVES[bits] as string }, cb);
  });
}

/** A few pre-generated keys per spec, refilled in the background (RSA keygen is slow). */
export class KeyPool {
  private readonly pools = new Map<string, Promise<KeyPair>[]>();
  private stopped = false;
  /** Keys handed out from the pool vs generated on the request path (what tests assert on, never time). */
  readonly stats = { fromPool: 0, onDemand: 0 };
  constructor(private readonly size = 2) {}

  private spawn(type: KeyType, bits: number): Promise<KeyPair> {
    const p = genKey(type, bits);
    p.catch(() => undefined);
    return p;
  }

  warm(type: KeyType, bits: number): void {
    if (this.stopped || type !== "rsa") return;
    const k = `${type}/${bits}`;
    let q = this.pools.get(k);
    if (!q) this.pools.set(k, (q = []));
    while (q.length < this.size) q.push(this.spawn(type, bits));
  }

  take(type: KeyType, bits: number): Promise<KeyPair> {
    const q = this.pools.get(`${type}/${bits}`);
    const pooled = q?.shift();
    if (pooled) this.stats.fromPool++;
    else this.stats.onDemand++;
    const p = pooled ?? genKey(type, bits);
    this.warm(type, bits);
    return p;
  }

  stop(): void {
    this.stopped = true;
    this.pools.clear();
  }
}

/** The `private_key` text: PKCS#1 / SEC1 ("der", Vault's default) or PKCS#8, as PEM or base64 DER. */
export function exportPrivateKey(k: KeyObject, keyType: KeyType, pkcs8: boolean, asPem: boolean): string {
  const type = pkcs8 ? "pkcs8" : keyType === "rsa" ? "pkcs1" : "sec1";
  if (asPem) return (k.export({ type, format: "pem" }) as string).trim();
  return (k.export({ type, format: "der" }) as Buffer).toString("base64");
}
