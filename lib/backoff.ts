// Capped exponential backoff with jitter, and an abortable sleep.

export interface BackoffOptions {
  /** First delay, ms. */
  initialMs: number;
  /** Largest delay, ms. */
  maxMs: number;
  /** Growth per failure; default 2. */
  factor?: number;
  /** Fraction of each delay drawn at random, 0..1; default 0.2. */
  jitter?: number;
  random?: () => number;
}

export class Backoff {
  readonly #opts: Required<BackoffOptions>;
  #failures = 0;

  constructor(options: BackoffOptions) {
    this.#opts = { factor: 2, jitter: 0.2, random: Math.random, ...options };
  }

  get failures(): number {
    return this.#failures;
  }

  /** Delay before the next attempt, and count one more failure. */
  next(): number {
    const { initialMs, maxMs, factor, jitter, random } = this.#opts;
    const base = Math.min(maxMs, initialMs * factor ** this.#failures);
    this.#failures++;
    return Math.round(base * (1 - jitter + jitter * random()));
  }

  reset(): void {
    this.#failures = 0;
  }
}

/** Resolves after `ms`, or early (without error) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
