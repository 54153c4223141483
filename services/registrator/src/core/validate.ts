// What Consul (and, downstream, DNS and nginx) can take in names, IDs, tags and meta.

/** DNS-label-like: what Consul's DNS interface and nginx upstream names take without escaping. */
const namePattern = /^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$/;
/** IDs travel in Consul URL paths (/agent/service/deregister/<id>): no slashes, no spaces. */
const idPattern = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/;
/** C0, DEL, C1, and the line and paragraph separators (line breaks to JSON/JS readers downstream). */
// eslint-disable-next-line no-control-regex
const controlChars = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const badTagChars = /[\s"'`;{}\\$]/;

export function isValidName(name: string): boolean {
  return namePattern.test(name);
}

export function isValidId(id: string): boolean {
  return idPattern.test(id);
}

export function isValidTag(tag: string): boolean {
  return tag.length <= 255 && !controlChars.test(tag) && !badTagChars.test(tag);
}

export function hasControlChars(s: string): boolean {
  return controlChars.test(s);
}

/** A value quoted for a log line, every control character escaped (\\u0085, \\u2028). */
export function quote(s: string): string {
  return JSON.stringify(s).replace(
    /[\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * A name derived from an image or a compose service (not chosen by the user) made
 * valid: other characters become "-", the ends are trimmed. "" when nothing is left.
 */
export function cleanDerivedName(raw: string): string {
  const cleaned = raw
    .replace(/[^A-Za-z0-9_-]+/g, "-")
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, "")
    .slice(0, 63)
    .replace(/[^A-Za-z0-9]+$/, "");
  return isValidName(cleaned) ? cleaned : "";
}

/** Edit distance counting a swap of neighbours as one edit (optimal string alignment). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The known key `key` is probably a misspelling of, if any: one edit away for short
 * keys, two for longer ones. Two-letter keys (id) are too short to guess from.
 */
export function suggest(key: string, known: readonly string[]): string | undefined {
  let best: { k: string; d: number } | undefined;
  for (const k of known) {
    if (k.length < 3 || k === key) continue;
    const d = editDistance(key, k);
    const allowed = k.length <= 4 ? 1 : 2;
    if (d <= allowed && (!best || d < best.d)) best = { k, d };
  }
  return best?.k;
}
