/**
 * The AppRole files in agent-only/ (role_id, secret_id) while a cached token makes them unneeded:
 * a missing or unreadable file is invisible until the token's max TTL ends and the next login
 * fails, so `check` reports it and `sync` warns; a file other users could read is reported by
 * `check` and tightened to 0600 by `sync`.
 */
import { readErrorText } from "../support/errno.js";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import type { ResolvedLayout } from "../layout/load.js";
import type { Logger } from "../support/log.js";
import { PRIVATE_FILE_MODE } from "../fs/writer.js";
import { setPrivateMode } from "../fs/private.js";

type AppRoleFileState = "ok" | "missing" | "unreadable" | "empty";

export interface AppRoleFileStatus {
  what: "role_id" | "secret_id";
  file: string;
  /** `agent-only/<relative path>`, for messages. */
  rel: string;
  state: AppRoleFileState;
  /** Why it could not be read (an errno code). */
  reason?: string;
  /** Permission bits, when the file exists. */
  mode?: number;
  /** Missing on purpose: removeSecretIdFile deletes the secret_id after a login. */
  expected: boolean;
}

const modeText = (m: number) => m.toString(8).padStart(4, "0");

/** Group or other permission bits: the file is (or can be made) readable by someone else. */
export const openMode = (mode: number | undefined): boolean => mode !== undefined && (mode & 0o077) !== 0;

export async function inspectAppRoleFiles(layout: ResolvedLayout): Promise<AppRoleFileStatus[]> {
  const out: AppRoleFileStatus[] = [];
  for (const [what, file] of [
    ["role_id", layout.approle.roleIdFile],
    ["secret_id", layout.approle.secretIdFile],
  ] as const) {
    const rel = `agent-only/${path.relative(layout.agentDir, file)}`;
    const s: AppRoleFileStatus = { what, file, rel, state: "ok", expected: false };
    try {
      s.mode = (await stat(file)).mode & 0o7777;
      const text = (await readFile(file, "utf8")).trim();
      if (!text) s.state = "empty";
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? "error";
      s.state = code === "ENOENT" ? "missing" : "unreadable";
      if (s.state === "unreadable") s.reason = code;
    }
    if (s.state === "missing" && what === "secret_id" && layout.approle.removeSecretIdFile) s.expected = true;
    out.push(s);
  }
  return out;
}

/** One line for a file the next login cannot use, or null when it is fine (or missing on purpose). */
export function appRoleFileProblem(s: AppRoleFileStatus): string | null {
  if (s.state === "ok" || s.expected) return null;
  const what = s.state === "missing" ? "does not exist" : s.state === "empty" ? "is empty" : `cannot be read (${readErrorText(s.reason, s.what === "secret_id" ? "auth.approle.secretIdFile" : "auth.approle.roleIdFile")})`;
  return `the ${s.what} file ${s.rel} ${what}: the cached token works until it can no longer be renewed, then the AppRole login fails`;
}

/** `sync`: AppRole files other users could read become 0600 (logged at info). */
export async function tightenAppRoleFiles(files: AppRoleFileStatus[], log: Logger): Promise<void> {
  for (const s of files) {
    if (s.mode === undefined || !openMode(s.mode)) continue;
    if (await setPrivateMode(s.file, PRIVATE_FILE_MODE)) {
      log.info({ file: s.rel }, `set ${s.rel} to mode 0600 (was ${modeText(s.mode)})`);
      s.mode = PRIVATE_FILE_MODE;
    } else {
      log.warn({ file: s.rel }, `${s.rel} has mode ${modeText(s.mode)} (readable by others) and its mode cannot be changed`);
    }
  }
}

/** `sync`, when a cached token spared the login: warn about a file the next login cannot use. */
export function warnAppRoleFiles(files: AppRoleFileStatus[], log: Logger): void {
  for (const s of files) {
    const p = appRoleFileProblem(s);
    if (p) log.warn({ file: s.rel }, p);
  }
}

export { modeText as appRoleModeText };
