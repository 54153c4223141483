// Routed services that recently had instances. A service scaled to zero vanishes from
// Consul's catalog; remembering it for a while keeps its routes answering 503 ("no
// healthy instance") instead of 404 ("no such route"), which is what a client of a
// service that is briefly down should see. Pure: time comes in as numbers.

export class RememberedServices {
  readonly #forgetAfterMs: number;
  readonly #lastSeen = new Map<string, number>();

  constructor(forgetAfterMs: number) {
    this.#forgetAfterMs = forgetAfterMs;
  }

  /** Names that are routed now. */
  seen(names: readonly string[], now: number): void {
    if (this.#forgetAfterMs <= 0) return;
    for (const n of names) this.#lastSeen.set(n, now);
  }

  /** Names to keep in the view with no instances, as of `now`. */
  retained(now: number): string[] {
    for (const [n, at] of this.#lastSeen) if (now - at > this.#forgetAfterMs) this.#lastSeen.delete(n);
    return [...this.#lastSeen.keys()];
  }
}
