/** Kubernetes names for exported objects: DNS-1123 labels derived from layout names, unique, stable. */

/** A DNS-1123 label (lowercase letters, digits and '-', at most 63, alphanumeric at both ends). */
export function dnsLabel(text: string, fallback = "x"): string {
  let s = text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
  if (s.length > 63) s = s.slice(0, 63).replace(/-+$/, "");
  return s === "" ? fallback : s;
}

/** Hands out names: a taken one gets -2, -3… (within 63 characters). */
export class NameSet {
  private readonly taken = new Set<string>();

  claim(text: string): string {
    const base = dnsLabel(text);
    let name = base;
    for (let n = 2; this.taken.has(name); n++) {
      const suffix = `-${n}`;
      name = base.slice(0, 63 - suffix.length).replace(/-+$/, "") + suffix;
    }
    this.taken.add(name);
    return name;
  }
}

/** A Secret data key: the file's base name when it is one ([-._a-zA-Z0-9]+), else a cleaned form. */
export function secretKey(file: string): string {
  const base = file.split("/").pop() ?? file;
  const clean = base.replace(/[^-._a-zA-Z0-9]+/g, "_");
  return clean === "" || clean === "." || clean === ".." ? "file" : clean;
}

/** A duration in ms as Go's time.ParseDuration reads it, within VSO's ^([0-9]+(\.[0-9]+)?(s|m|h))$. */
export function goDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(3).replace(/0+$/, "")}s`;
}
