/** What each output is called and which files it owns (a PKI set owns several). */
import path from "node:path";
import type { FileOutput, OutputSpec, PkiOutput } from "./schema.js";

const PKI_DEFAULT_FILES = { cert: "cert.pem", key: "key.pem", ca: "ca.pem", fullchain: "fullchain.pem" } as const;
export type PkiPart = keyof typeof PKI_DEFAULT_FILES;

/** An output's identity: its file, or a PKI set's directory. */
export function outputId(o: OutputSpec): string {
  return path.posix.normalize(o.format === "pki" ? o.dir : o.file);
}

export function isPki(o: OutputSpec): o is PkiOutput {
  return o.format === "pki";
}

export function isFileOutput(o: OutputSpec): o is FileOutput {
  return o.format !== "pki";
}

/** The PKI set's files (relative to public/), leaving out parts set to null. */
export function pkiFiles(o: PkiOutput): Partial<Record<PkiPart, string>> {
  const out: Partial<Record<PkiPart, string>> = {};
  for (const part of Object.keys(PKI_DEFAULT_FILES) as PkiPart[]) {
    const name = o.files?.[part] === undefined ? PKI_DEFAULT_FILES[part] : o.files[part];
    if (name !== null) out[part] = path.posix.normalize(`${o.dir}/${name}`);
  }
  return out;
}

/** Every file an output writes, relative to public/. */
export function outputFiles(o: OutputSpec): string[] {
  return isPki(o) ? Object.values(pkiFiles(o)) : [path.posix.normalize(o.file)];
}
