// Coalesces bursts of changes (consul-template's `wait { min, max }`): after a change, fire once
// nothing else has changed for `minMs`, but never later than `maxMs` after the first change of
// the burst. A change that ends a quiet spell of at least `maxMs` (the very first one included)
// fires at once: a lone change — one container started — is not delayed, and the rest of a
// burst that follows it is still coalesced.

export interface QuiescenceOptions {
  /** 0 disables coalescing: every change fires at once. */
  minMs: number;
  /** Upper bound of a wait; also the quiet spell after which a change fires at once. Below `minMs` means `minMs`. */
  maxMs: number;
  fire: () => void;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
  now?: () => number;
}

export class Quiescence {
  readonly #o: Required<QuiescenceOptions>;
  #lastChange: number | undefined;
  #burstStart: number | undefined;
  #timer: unknown;

  constructor(options: QuiescenceOptions) {
    this.#o = {
      setTimer: (fn, ms) => setTimeout(fn, ms),
      clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
      now: () => Date.now(),
      ...options,
    };
  }

  /** Whether a change is waiting to fire. */
  get pending(): boolean {
    return this.#burstStart !== undefined;
  }

  change(): void {
    const { minMs, now } = this.#o;
    const maxMs = Math.max(this.#o.maxMs, minMs);
    const t = now();
    const quiet = this.#lastChange === undefined || t - this.#lastChange >= maxMs;
    this.#lastChange = t;
    if (minMs <= 0 || (quiet && !this.pending)) {
      this.#clear();
      this.#o.fire();
      return;
    }
    const burstStart = this.#burstStart ?? t;
    this.#clear();
    this.#burstStart = burstStart;
    this.#timer = this.#o.setTimer(() => this.flush(), Math.max(0, Math.min(minMs, burstStart + maxMs - t)));
  }

  /** Fires now if a change is waiting (and forgets the timer). */
  flush(): void {
    if (this.#burstStart === undefined) return;
    this.#clear();
    this.#o.fire();
  }

  stop(): void {
    this.#clear();
  }

  #clear(): void {
    if (this.#timer !== undefined) this.#o.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#burstStart = undefined;
  }
}
