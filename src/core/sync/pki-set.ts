/**
 * A certificate set that is not due, checked file by file against what its recorded issue
 * implies: cert.pem is the issued leaf, ca.pem the issued chain, fullchain.pem the leaf followed
 * by the chain, key.pem the key on disk (when it matches the certificate: a key cannot be
 * reconstructed, so one that does not match makes the set due in pki.ts). `sync` rewrites a file
 * with the wrong mode, the wrong bytes or more than one link by temp + rename (never chmod in
 * place, which would follow a hard link out of public/); `check` reports the same findings.
 * When the chain can be derived neither from the state nor from a file on disk that is still
 * what vault-render wrote (or a verifiable chain for the certificate), the set must be re-issued.
 */
import { X509Certificate } from "node:crypto";
import { lstat, open } from "node:fs/promises";
import { constants as C } from "node:fs";
import path from "node:path";
import type { PkiPart } from "../layout/outputs.js";
import { pkiFiles } from "../layout/outputs.js";
import type { PkiOutput } from "../layout/schema.js";
import { pemBlock } from "../vault/pki.js";
import type { OutputState, PkiState } from "../state/state.js";
import { keyedHash } from "../state/state.js";
import { FILE_MODE } from "../fs/writer.js";

export interface ExpectedSet {
  files: Partial<Record<PkiPart, Buffer>>;
  cert: string;
  chain: string;
}

export interface SetFileProblem {
  part: PkiPart;
  rel: string;
  /** e.g. "mode 0600", "content differs from the recorded issue", "2 links", "missing". */
  problems: string[];
  /** A symlink (or another non-regular file) stands there: sync refuses it as for any output. */
  unsafe?: string;
}

interface DiskFile {
  bytes: Buffer;
  mode: number;
  nlink: number;
}

async function readDisk(abs: string): Promise<DiskFile | "missing" | "symlink" | "not-a-file"> {
  let st;
  try {
    st = await lstat(abs);
  } catch {
    return "missing";
  }
  if (st.isSymbolicLink()) return "symlink";
  if (!st.isFile()) return "not-a-file";
  const fh = await open(abs, C.O_RDONLY | C.O_NOFOLLOW);
  try {
    return { bytes: await fh.readFile(), mode: st.mode & 0o7777, nlink: st.nlink };
  } finally {
    await fh.close();
  }
}

const PEM_RE = /-----BEGIN CERTIFICATE-----\r?\n[\s\S]*?-----END CERTIFICATE-----/g;

/** A chain in canonical form (PEM blocks, each ending in one newline, nothing else) whose first certificate issued `leaf`. */
function isChainFor(leaf: X509Certificate, pem: string): boolean {
  const blocks = pem.match(PEM_RE) ?? [];
  if (blocks.length === 0 || blocks.map(pemBlock).join("") !== pem) return false;
  try {
    const first = new X509Certificate(blocks[0] as string);
    for (const b of blocks.slice(1)) new X509Certificate(b);
    return leaf.checkIssued(first) && leaf.verify(first.publicKey);
  } catch {
    return false;
  }
}

/**
 * What every file of the set must hold, or why it cannot be known without a new issue. `rec` is
 * the set's state record, `outputs` the per-file records (keyed hashes under `hmacKey`, which may
 * be missing for a read-only `check`).
 */
export async function expectedSet(
  publicDir: string,
  o: PkiOutput,
  rec: PkiState | undefined,
  outputs: Record<string, OutputState>,
  hmacKey: Buffer | null,
): Promise<ExpectedSet | { reissue: string }> {
  const parts = pkiFiles(o);
  const disk: Partial<Record<PkiPart, DiskFile>> = {};
  for (const [part, rel] of Object.entries(parts) as Array<[PkiPart, string]>) {
    const d = await readDisk(path.join(publicDir, rel)).catch(() => "missing" as const);
    if (typeof d === "object") disk[part] = d;
  }
  const written = (part: PkiPart) => {
    const d = disk[part];
    const r = outputs[parts[part] ?? ""];
    return d !== undefined && r !== undefined && hmacKey !== null && keyedHash(hmacKey, d.bytes) === r.hash ? d.bytes.toString("utf8") : undefined;
  };
  const leafSrc = parts.cert ? disk.cert : disk.fullchain;
  if (!leafSrc) return { reissue: "no certificate on disk" };
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(leafSrc.bytes);
  } catch {
    return { reissue: "the certificate on disk cannot be parsed" };
  }
  const recCert = rec?.cert && serialOf(rec.cert) === leaf.serialNumber ? rec.cert : undefined;
  const cert = recCert ?? (parts.cert ? written("cert") : undefined) ?? pemBlock(leaf.toString());
  let chain: string | undefined;
  if (recCert && rec?.chain && isChainFor(leaf, rec.chain)) chain = rec.chain;
  if (chain === undefined) {
    const fromCa = parts.ca ? disk.ca?.bytes.toString("utf8") : undefined;
    const full = parts.fullchain ? disk.fullchain?.bytes.toString("utf8") : undefined;
    const fromFull = full?.startsWith(cert) ? full.slice(cert.length) : undefined;
    // What vault-render wrote first, then any file that is a verifiable chain for the leaf.
    const recorded = [parts.ca ? written("ca") : undefined, parts.fullchain && written("fullchain")?.startsWith(cert) ? fromFull : undefined];
    chain = [...recorded, fromCa, fromFull].find((c): c is string => c !== undefined && isChainFor(leaf, c));
  }
  if (chain === undefined) {
    if (!parts.ca && !parts.fullchain) chain = "";
    else return { reissue: "the CA chain cannot be restored (no record of the issue, and no file on disk holds a chain for the certificate)" };
  }
  const files: Partial<Record<PkiPart, Buffer>> = {};
  if (parts.cert) files.cert = Buffer.from(cert);
  if (parts.key && disk.key) files.key = disk.key.bytes;
  if (parts.ca) files.ca = Buffer.from(chain);
  if (parts.fullchain) files.fullchain = Buffer.from(cert + chain);
  return { files, cert, chain };
}

/** The serial of a PEM certificate, or undefined when it cannot be parsed. */
export function serialOf(pem: string): string | undefined {
  try {
    return new X509Certificate(pem).serialNumber;
  } catch {
    return undefined;
  }
}

/** Every file of the set that does not hold exactly what `expected` says, at 0644, with one link. */
export async function inspectSet(publicDir: string, o: PkiOutput, expected: ExpectedSet): Promise<SetFileProblem[]> {
  const out: SetFileProblem[] = [];
  for (const [part, rel] of Object.entries(pkiFiles(o)) as Array<[PkiPart, string]>) {
    const want = expected.files[part];
    const d = await readDisk(path.join(publicDir, rel)).catch(() => "missing" as const);
    if (d === "symlink" || d === "not-a-file") {
      out.push({ part, rel, problems: [d === "symlink" ? "is a symlink" : "is not a regular file"], unsafe: d });
      continue;
    }
    if (d === "missing") {
      out.push({ part, rel, problems: ["missing"] });
      continue;
    }
    const problems: string[] = [];
    if (want && !d.bytes.equals(want)) problems.push(part === "cert" ? "content is not the issued certificate alone" : part === "ca" ? "content is not the CA chain of the recorded issue" : "content is not the certificate followed by the CA chain of the recorded issue");
    if (d.mode !== FILE_MODE) problems.push(`mode ${d.mode.toString(8).padStart(4, "0")}`);
    if (d.nlink > 1) problems.push(`${d.nlink} links (a hard link shares it with another path)`);
    if (problems.length) out.push({ part, rel, problems });
  }
  return out;
}
