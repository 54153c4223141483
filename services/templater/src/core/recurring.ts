// "Log once while it lasts": a problem that every snapshot reports again (an unsafe value, an
// unusable weight) is logged when it first appears, and again only after it went away. Pure.

export class Recurring<T> {
  readonly #key: (item: T) => string;
  #last = new Set<string>();

  constructor(key: (item: T) => string) {
    this.#key = key;
  }

  /** The items the last report did not have; `items` becomes the last report. */
  fresh(items: readonly T[]): T[] {
    const keys = items.map(this.#key);
    const out = items.filter((_, i) => !this.#last.has(keys[i]!));
    this.#last = new Set(keys);
    return out;
  }
}
