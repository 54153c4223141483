// When the next full sync runs: one period after the last success, sooner when
// asked (an event stream reconnect, a registry loss), after a backoff delay when
// one failed.

import { Backoff } from "../../../../lib/backoff.ts";

export interface SchedulerOptions {
  periodMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
}

export class SyncScheduler {
  readonly #o: SchedulerOptions;
  readonly #backoff: Backoff;
  #nextAt = 0;
  #wake: (() => void) | undefined;

  constructor(o: SchedulerOptions) {
    this.#o = o;
    this.#backoff = new Backoff({ initialMs: o.retryInitialMs, maxMs: o.retryMaxMs });
  }

  /** A full sync after `delayMs` (sooner if one is already due). */
  request(delayMs = 0): void {
    this.#nextAt = Math.min(this.#nextAt, Date.now() + delayMs);
    this.#wake?.();
  }

  /** A sync failed: the next one after a backoff delay, which is returned. */
  failed(): number {
    const delay = this.#backoff.next();
    this.request(delay);
    return delay;
  }

  wake(): void {
    this.#wake?.();
  }

  /** Runs `sync` whenever due until `signal` aborts; `onError` gets what it threw. */
  async run(signal: AbortSignal, sync: () => Promise<void>, onError: (err: unknown) => void): Promise<void> {
    while (!signal.aborted) {
      const wait = this.#nextAt - Date.now();
      if (wait > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, wait);
          this.#wake = done;
          function done() {
            clearTimeout(timer);
            resolve();
          }
        });
        this.#wake = undefined;
        continue;
      }
      this.#nextAt = Infinity;
      try {
        await sync();
        this.#backoff.reset();
        this.request(this.#o.periodMs);
      } catch (err) {
        if (signal.aborted) return;
        onError(err);
      }
    }
  }
}
