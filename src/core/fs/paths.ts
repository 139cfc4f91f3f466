/**
 * Path rules for files vault-render writes. Output paths are confined to public/: relative,
 * no `.`/`..` segments, no control characters, bounded lengths, and never our temp-file names.
 */
export const TEMP_PREFIX = ".vault-render.tmp-";

export function checkOutputPath(rel: string): string | null {
  if (rel.length === 0) return "must not be empty";
  if (rel.startsWith("/")) return "must be relative (no leading /)";
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(rel)) return "must not contain control characters (NUL, newline, tab, ...)";
  if (rel.includes("\\")) return "must use / as separator (no backslash)";
  if (Buffer.byteLength(rel) > 1024) return "is longer than 1024 bytes";
  const segs = rel.split("/");
  for (const s of segs) {
    if (s === "") return "must not contain empty segments (// or a trailing /)";
    if (s === "." || s === "..") return 'must not contain "." or ".." segments (paths stay inside public/)';
    if (Buffer.byteLength(s) > 255) return "has a path segment longer than 255 bytes";
    if (s.startsWith(TEMP_PREFIX)) return `must not start with the reserved prefix ${TEMP_PREFIX}`;
  }
  return null;
}
