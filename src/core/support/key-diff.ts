/** Which keys of a keyed output differ between two versions, and the one way it is shown (`+new -gone ~changed`). */

export interface KeyDiff {
  added: string[];
  removed: string[];
  changed: string[];
}

/** Keys of `after` missing from `before`, keys of `before` missing from `after`, keys in both whose values are not `same`. */
export function diffKeys<V>(before: Record<string, V>, after: Record<string, V>, same: (a: V, b: V) => boolean = (a, b) => a === b): KeyDiff {
  const added = Object.keys(after).filter((k) => !Object.hasOwn(before, k));
  const removed = Object.keys(before).filter((k) => !Object.hasOwn(after, k));
  const changed = Object.keys(after).filter((k) => Object.hasOwn(before, k) && !same(before[k] as V, after[k] as V));
  return { added, removed, changed };
}

/** `+added -removed ~changed`, in that order ("" when nothing differs). */
export function formatKeyDiff(d: Partial<KeyDiff>): string {
  return [...(d.added ?? []).map((k) => `+${k}`), ...(d.removed ?? []).map((k) => `-${k}`), ...(d.changed ?? []).map((k) => `~${k}`)].join(" ");
}
