// One long poll per routed service on /v1/health/service/<name> (its index is the service's
// own, so a poll returns only when that service changes): the fast path for instance changes.
// The whole-catalog watcher (consul-watcher.ts) stays the authority; these only tell it sooner,
// with one service's answer instead of every node. Bounded by a count of connections.

import { Backoff, sleep } from "../../../../lib/backoff.ts";
import type { Logger } from "../../../../lib/log.ts";
import { problemOf } from "../../../../lib/consul-answer.ts";
import { floorDelay } from "../core/blocking-index.ts";
import type { ServiceAnswer } from "../core/catalog.ts";
import type { Answer, BlockingRead } from "./consul-api.ts";

export interface ServiceWatchesOptions {
  /** body undefined: not newer than `read.index` (consul-api.ts serviceHealth). */
  read: (name: string, read: BlockingRead, signal: AbortSignal) => Promise<Answer<ServiceAnswer | undefined>>;
  waitMs: number;
  floorMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
  /** A service changed: its answer, and when it arrived (ms since the epoch). */
  onAnswer: (answer: ServiceAnswer, observedAt: number) => void;
  onRequest?: (endpoint: string, result: string) => void;
  log: Logger;
  now?: () => number;
  random?: () => number;
}

export const serviceWatchEndpoint = "health/service";

export class ServiceWatches {
  readonly #o: ServiceWatchesOptions;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #loops = new Map<string, AbortController>();
  readonly #failing = new Set<string>();

  constructor(options: ServiceWatchesOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
  }

  /** Whether `name` is watched. */
  has(name: string): boolean {
    return this.#loops.has(name);
  }

  /** Whether no watch's last request failed (a failing one may miss a change until it is back). */
  get healthy(): boolean {
    return this.#failing.size === 0;
  }

  /**
   * Watches exactly `names` from now on. New watches start at `fromIndex` (a state already known
   * up to that index): they return at once only for a service that changed since.
   */
  follow(names: readonly string[], fromIndex: number, signal: AbortSignal): void {
    const wanted = new Set(names);
    for (const [name, ctl] of this.#loops) {
      if (wanted.has(name)) continue;
      ctl.abort();
      this.#loops.delete(name);
      this.#failing.delete(name);
    }
    for (const name of wanted) {
      if (this.#loops.has(name) || signal.aborted) continue;
      const ctl = new AbortController();
      const stop = () => ctl.abort();
      signal.addEventListener("abort", stop, { once: true });
      this.#loops.set(name, ctl);
      void this.#loop(name, fromIndex, ctl.signal).finally(() => signal.removeEventListener("abort", stop));
    }
  }

  async #loop(name: string, fromIndex: number, signal: AbortSignal): Promise<void> {
    const { waitMs, floorMs } = this.#o;
    const backoff = new Backoff({ initialMs: this.#o.retryInitialMs, maxMs: this.#o.retryMaxMs });
    let index = Math.max(1, fromIndex);
    while (!signal.aborted) {
      const started = this.#now();
      try {
        // Each wait drawn from [waitMs/2, waitMs]: watches started together would otherwise all
        // time out together, and a thousand answers at once hold up the one that matters.
        const wait = Math.round(waitMs * (0.5 + this.#random() / 2));
        const a = await this.#o.read(name, { index, waitMs: wait }, signal);
        this.#failing.delete(name);
        this.#o.onRequest?.(serviceWatchEndpoint, "ok");
        backoff.reset();
        if (Number.isFinite(a.index) && a.index > index && a.body) {
          index = a.index;
          this.#o.onAnswer(a.body, this.#now());
        } else if (Number.isFinite(a.index) && a.index >= 1) {
          // Timed out: the service's own index is below the one we started from; wait on it.
          index = a.index;
        }
      } catch (err) {
        if (signal.aborted) return;
        this.#failing.add(name);
        this.#o.onRequest?.(serviceWatchEndpoint, problemOf(err).kind);
        const delay = backoff.next();
        this.#o.log.debug("service watch failed", { consulService: name, err, retryInMs: delay });
        await sleep(delay, signal).catch(() => {});
        continue;
      }
      await sleep(floorDelay(started, this.#now(), floorMs), signal).catch(() => {});
    }
  }
}
