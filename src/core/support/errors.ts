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
  | "DRY_RUN_PENDING"
  | "VALIDATION_FAILED"
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

/** Dry run: a source whose data would only exist after a real run (new leased credentials). */
export class DryRunPending extends VrError {
  constructor(message: string) {
    super("DRY_RUN_PENDING", message);
    this.name = "DryRunPending";
  }
}

/** An output cannot render because one of its sources failed: `source` and the source's own `error`. */
export class SourceUnavailable extends VrError {
  constructor(readonly source: string, readonly error: Error) {
    super("SOURCE_UNAVAILABLE", error.message, {
      hint: `the output renders once source "${source}" can be read`,
      exit: error instanceof VrError ? error.exit : ExitCode.Failed,
      cause: error,
    });
    this.name = "SourceUnavailable";
  }
}

export function isVrError(e: unknown): e is VrError {
  return e instanceof VrError;
}

/**
 * The one error formatter: `message (hint: …)`, never a stack; a source's failure seen from an
 * output is `source "name": …`. The defaults are the per-output form (results, logs, state, check
 * findings): messages as they are. `oneLine` is the entry point's form.
 */
export function describeError(e: unknown, how: { flat?: boolean; internal?: boolean } = {}): string {
  if (e === undefined && !how.internal) return "failed";
  const text = (m: string) => (how.flat ? m.replace(/\s*\n\s*/g, " ") : m);
  if (!(e instanceof Error)) return how.internal ? `internal error: ${String(e)}` : String(e);
  if (e instanceof SourceUnavailable) return `source "${e.source}": ${describeError(e.error, how)}`;
  if (isVrError(e)) return e.hint ? `${text(e.message)} (hint: ${e.hint})` : text(e.message);
  return how.internal ? `internal error: ${text(e.message)}` : text(e.message);
}

/** One line for a human at the entry point: a non-VrError is an internal error. Never includes a stack. */
export function oneLine(e: unknown): string {
  return describeError(e, { flat: true, internal: true });
}
