/**
 * File errors in words: an errno code, what it means, and what to do about it. Only the code, its
 * meaning and the file's name or role appear, never its content.
 */

/** The errno code of an error (or of its cause, when the error wraps one; or the code itself), or undefined. */
export function errnoOf(e: unknown): string | undefined {
  if (typeof e === "string") return /^E[A-Z0-9]+$/.test(e) ? e : undefined;
  for (let cur = e, n = 0; cur && typeof cur === "object" && n < 5; cur = (cur as { cause?: unknown }).cause, n++) {
    const code = (cur as NodeJS.ErrnoException).code;
    if (typeof code === "string" && /^E[A-Z0-9]+$/.test(code)) return code;
  }
  return undefined;
}

const MEANING: Readonly<Record<string, string>> = {
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOENT: "no such file or directory",
  EISDIR: "is a directory",
  ENOTDIR: "a part of the path is not a directory",
  ELOOP: "a symbolic link where none is followed (or a loop of them)",
  EROFS: "read-only file system",
  ENOSPC: "no space left on the device",
  EDQUOT: "disk quota exceeded",
  EIO: "input/output error (the disk or the file system)",
  EMFILE: "too many open files",
  ENFILE: "too many open files on the system",
  ENAMETOOLONG: "file name too long",
  EBUSY: "device or resource busy",
  ENXIO: "no reader on the other end (a FIFO or socket)",
};

/** What to do when a file cannot be read; `setting` names the layout field that names it. */
function readStep(code: string, setting: string | undefined): string | undefined {
  const names = setting ? `the layout's ${setting}` : "the path";
  switch (code) {
    case "EACCES":
    case "EPERM":
      return "run vault-render as the file's owner or chmod 0600 it";
    case "EISDIR":
      return `${names} must name a file, not a directory`;
    case "ENOENT":
      return `check ${names} (relative paths start at the layout's directory)`;
    case "ENOTDIR":
      return `a file stands where ${names} expects a directory`;
    case "ELOOP":
      return "replace the link with the file itself";
    case "EIO":
      return "check the disk (dmesg) and restore the file";
    case "EMFILE":
    case "ENFILE":
      return "raise the open-file limit (LimitNOFILE=)";
    default:
      return undefined;
  }
}

/**
 * `EACCES: permission denied: run vault-render as the file's owner or chmod 0600 it`: the code,
 * its meaning and the next step for a file that cannot be read (as much of it as is known).
 */
export function readErrorText(e: unknown, setting?: string): string {
  const code = errnoOf(e);
  if (!code) return "error";
  return [code, MEANING[code], readStep(code, setting)].filter(Boolean).join(": ");
}

/** `ENOENT: no such file or directory`: the code and its meaning, without a next step. */
export function errnoText(e: unknown): string {
  const code = errnoOf(e);
  if (!code) return "error";
  return MEANING[code] ? `${code}: ${MEANING[code]}` : code;
}

/** The next step alone (for a hint), when there is one. */
export function readErrorStep(e: unknown, setting?: string): string | undefined {
  const code = errnoOf(e);
  return code ? readStep(code, setting) : undefined;
}
