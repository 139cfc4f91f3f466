/**
 * Typed errors. Every error a user can see has a stable `code`, a one-line `message` that never
 * contains a secret value, an optional `hint`, and the exit code the entry point should use.
 */

export const ExitCode = {
  /** Everything is in place. */
  Ok: 0,
  /** The run happened but some outputs failed (or, for `check`, problems were found). */
  Failed: 1,
  /** Usage error or invalid layout: nothing was attempted. */
  Usage: 2,
  /** Vault unavailable (unreachable, sealed, standby) or authentication failed: nothing changed. */
  Unavailable: 3,
  /** Another vault-render run held the lock for longer than the wait allowed: nothing changed. */
  Locked: 4,
  /** Local environment failure: agent-only/ or public/ unusable (not a directory, no space, read-only, I/O error): nothing changed. */
  Environment: 5,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export type ErrorCode =
  | "LAYOUT_INVALID"
  | "LAYOUT_READ"
  | "USAGE"
  | "CONFIG_ENV"
  | "PATHS"
  | "AGENT_DIR"
  | "LOCKED"
  | "LOCK_ABORTED"
  | "VAULT_UNREACHABLE"
  | "VAULT_SEALED"
  | "VAULT_STANDBY"
  | "VAULT_TLS"
  | "VAULT_BAD_RESPONSE"
  | "VAULT_RATE_LIMITED"
  | "VAULT_SERVER_ERROR"
  | "VAULT_PERMISSION_DENIED"
  | "VAULT_INVALID_TOKEN"
  | "VAULT_NOT_FOUND"
  | "VAULT_DELETED_VERSION"
  | "VAULT_REQUEST"
  | "AUTH_FAILED"
  | "AUTH_FILES"
  | "WRAPPING"
  | "MISSING_KEY"
  | "RENDER"
  | "SOURCE_UNAVAILABLE"
  | "DOTENV_REFUSED"
  | "TEMPLATE"
  | "WRITE"
  | "UNSAFE_PATH"
  | "STATE"
  | "INTERNAL";

export interface VrErrorOptions {
  hint?: string;
  exit?: ExitCode;
  cause?: unknown;
}

export class VrError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly exit: ExitCode;

  constructor(code: ErrorCode, message: string, options: VrErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "VrError";
    this.code = code;
    this.hint = options.hint;
    this.exit = options.exit ?? ExitCode.Failed;
  }
}

export function isVrError(e: unknown): e is VrError {
  return e instanceof VrError;
}

/** One line for a human: `message (hint)`. Never includes a stack. */
export function oneLine(e: unknown): string {
  if (isVrError(e)) {
    const msg = e.message.replace(/\s*\n\s*/g, " ");
    return e.hint ? `${msg} (hint: ${e.hint})` : msg;
  }
  if (e instanceof Error) return `internal error: ${e.message.replace(/\s*\n\s*/g, " ")}`;
  return `internal error: ${String(e)}`;
}
