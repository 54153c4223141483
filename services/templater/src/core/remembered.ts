// Routed services that recently had instances. A service scaled to zero vanishes from
// Consul's catalog; remembering it for a while keeps its routes answering 503 ("no
// healthy instance") instead of 404 ("no such route"), which is what a client of a
// service that is briefly down should see. Pure: time comes in as numbers.

export class RememberedServices {
  readonly #forgetAfterMs: number;
  readonly #lastSeen = new Map<string, number>();
  /** retained()'s answer, made again only when a name came or went (it is asked on every change). */
  #names: readonly string[] | undefined = [];

  constructor(forgetAfterMs: number) {
    this.#forgetAfterMs = forgetAfterMs;
  }

  /** Names that are routed now. */
  seen(names: readonly string[], now: number): void {
    if (this.#forgetAfterMs <= 0) return;
    for (const n of names) {
      if (!this.#lastSeen.has(n)) this.#names = undefined;
      this.#lastSeen.set(n, now);
    }
  }

  /** Names to keep in the view with no instances, as of `now`. */
  retained(now: number): readonly string[] {
    this.#lastSeen.forEach((at, n) => {
      if (now - at <= this.#forgetAfterMs) return;
      this.#lastSeen.delete(n);
      this.#names = undefined;
    });
    return (this.#names ??= [...this.#lastSeen.keys()]);
  }
}
