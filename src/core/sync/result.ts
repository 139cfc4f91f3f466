/** What a sync pass reports: one result per file, the pass's outcome, and the line a result is shown as. */
import type { AuthResult } from "../vault/auth.js";
import type { ExitCode, VrError } from "../support/errors.js";
import { describeError } from "../support/errors.js";
import { formatKeyDiff } from "../support/key-diff.js";

/** What `rotate` forces on top of a normal pass. */
export interface Forces {
  /** PKI outputs (by id) to re-issue. */
  pki: Set<string>;
  /** Lease sources to replace. */
  leases: Set<string>;
}

type Action = "create" | "update" | "unchanged" | "delete" | "failed";

export interface OutputResult {
  file: string;
  action: Action;
  error?: VrError | Error;
  keysAdded?: string[];
  keysRemoved?: string[];
  keysChanged?: string[];
  sizeBefore?: number;
  sizeAfter?: number;
  modeFixed?: boolean;
  /** For PKI sets: why it was (or would be) issued, and the serials. */
  note?: string;
  /** Failed after something had changed (a certificate issued, part of a set renamed). */
  afterChange?: boolean;
}

export interface SyncResult {
  exit: ExitCode;
  results: OutputResult[];
  requests: number;
  auth: AuthResult["via"];
  hookFailures: string[];
}

export const changedAction = (r: OutputResult): boolean => r.action === "create" || r.action === "update";

/** One result as the dry-run plan and the log show it. */
export function describePlan(r: OutputResult): string {
  const parts = [`${r.action.padEnd(9)} ${r.file}`];
  const keys = formatKeyDiff({ added: r.keysAdded, removed: r.keysRemoved, changed: r.keysChanged });
  if (keys) parts.push(`keys: ${keys}`);
  if ((r.action === "create" || r.action === "update") && r.sizeAfter !== undefined) parts.push(`${r.sizeBefore ?? 0} -> ${r.sizeAfter} bytes`);
  if (r.modeFixed) parts.push("mode -> 0644");
  if (r.note) parts.push(r.note);
  if (r.error) parts.push(`error: ${describeError(r.error)}`);
  return parts.join("  ");
}
