/**
 * An output's `validate` command: which placeholders it may use and the argv once they are
 * replaced. A file output has one placeholder, `{}` (the file); a PKI set has `{cert}`, `{key}`,
 * `{ca}`, `{fullchain}` (each file of the set) and `{}` (the certificate, or the full chain when
 * the set has no cert file). Every occurrence inside an argument is replaced (`-c{}` too).
 */
import type { PkiPart } from "./outputs.js";
import { isPki, pkiFiles } from "./outputs.js";
import type { OutputSpec } from "./schema.js";

const PARTS: readonly PkiPart[] = ["cert", "key", "ca", "fullchain"];

/** The placeholder → file path map of an output: `paths` gives each part's path (a file output's is "file"). */
export type ValidatePaths = Partial<Record<PkiPart | "file", string>>;

/** The argv with every placeholder replaced by its path. */
export function validateArgv(argv: readonly string[], paths: ValidatePaths): string[] {
  const main = paths.file ?? paths.cert ?? paths.fullchain ?? "";
  return argv.map((a) => a.replace(/\{(cert|key|ca|fullchain)?\}/g, (_m, part: PkiPart | undefined) => (part ? (paths[part] ?? "") : main)));
}

/** Layout problems of an output's `validate`: [path inside the output, message]. */
export function validateIssues(o: OutputSpec): Array<[Array<string | number>, string]> {
  if (!o.validate) return [];
  const out: Array<[Array<string | number>, string]> = [];
  const joined = o.validate.join("\0");
  if (!isPki(o)) {
    if (!joined.includes("{}")) out.push([["validate"], 'the command must name the file it checks: put {} in an argument, e.g. ["jq", "empty", "{}"]']);
    return out;
  }
  const files = pkiFiles(o);
  if (!/\{(cert|key|ca|fullchain)?\}/.test(joined)) out.push([["validate"], "the command must name a file of the set: {cert}, {key}, {ca}, {fullchain} or {}"]);
  o.validate.forEach((a, j) => {
    for (const part of PARTS) if (a.includes(`{${part}}`) && !files[part]) out.push([["validate", j], `{${part}} names a file the set leaves out (files.${part} is null)`]);
  });
  return out;
}
