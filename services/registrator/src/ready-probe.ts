// Fast readiness (SERVICE_READY_HTTP): a Docker HEALTHCHECK first runs one interval
// after start, so the registrator probes the instance itself and reports the first 2xx.
// Right after the container started the pauses are short, and they grow with the time
// since the start (probeDelay): what a late answer costs stays a small fraction of how long
// the service took, and a slow starter is probed no more often than every intervalMs.
// Rounds are bounded in time and in number at once.

import http from "node:http";
import { sleep } from "../../../lib/backoff.ts";
import type { Logger } from "../../../lib/log.ts";
import { Semaphore } from "../../../lib/concurrency.ts";

export interface ReadyProbeOptions {
  /** The longest pause between two probes of one start. */
  intervalMs: number;
  /** How long one round keeps trying. */
  timeoutMs: number;
  /** Rounds running at once; more wait their turn. */
  concurrency: number;
  log: Logger;
  onReady: (target: ProbeTarget) => void;
  onGiveUp?: (target: ProbeTarget) => void;
}

export interface ProbeTarget {
  containerId: string;
  containerName: string;
  instanceId: string;
  /** The container run the answer belongs to. */
  startedAt: string;
  url: string;
}

/** The shortest pause between two probes, right after the start. */
export const firstIntervalMs = 2;
/** The pause is this fraction of the time since the container started, between the two bounds. */
export const intervalFraction = 1 / 8;

/**
 * The pause before the next probe, `sinceStartMs` after the container started: 1/8 of it,
 * at least 2 ms and at most `maxMs` (once a start has taken 8 × maxMs, every maxMs). A
 * service listening after 50 ms is seen within ~6 ms of it; one that takes seconds is
 * probed at most ~8 ln(8 × maxMs / 16 ms) + 8 times more than at a steady `maxMs` (~30 with 25 ms).
 */
export function probeDelay(sinceStartMs: number, maxMs: number): number {
  const grown = Math.max(firstIntervalMs, Math.max(0, sinceStartMs) * intervalFraction);
  return Math.max(1, Math.round(Math.min(maxMs, grown)));
}

/** One GET; true on 2xx. Never throws. */
export function probeOnce(url: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(
      url,
      { agent: false, timeout: timeoutMs, headers: { connection: "close" } },
      (res) => {
        res.resume();
        resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300);
      },
    );
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
  });
}

export class ReadyProber {
  readonly #opts: ReadyProbeOptions;
  readonly #sem: Semaphore;
  /** key → the round's abort controller. */
  readonly #rounds = new Map<string, AbortController>();
  /** Targets whose first full round ended without a 2xx: later rounds make one attempt. */
  readonly #gaveUp = new Set<string>();
  readonly #stopped = new AbortController();

  constructor(opts: ReadyProbeOptions) {
    this.#opts = opts;
    this.#sem = new Semaphore(opts.concurrency);
  }

  get active(): number {
    return this.#rounds.size;
  }

  static key(t: Pick<ProbeTarget, "containerId" | "instanceId" | "startedAt">): string {
    return `${t.containerId}|${t.instanceId}|${t.startedAt}`;
  }

  /** Starts a round for `t` unless one is running. */
  ensure(t: ProbeTarget): void {
    const key = ReadyProber.key(t);
    if (this.#rounds.has(key) || this.#stopped.signal.aborted) return;
    const ac = new AbortController();
    this.#rounds.set(key, ac);
    void this.#round(t, key, ac.signal).finally(() => {
      if (this.#rounds.get(key) === ac) this.#rounds.delete(key);
    });
  }

  /** Stops every round of a container (it stopped, or its readiness is decided). */
  cancel(containerId: string): void {
    for (const [key, ac] of this.#rounds) {
      if (key.startsWith(`${containerId}|`)) {
        ac.abort();
        this.#rounds.delete(key);
      }
    }
    for (const key of this.#gaveUp) if (key.startsWith(`${containerId}|`)) this.#gaveUp.delete(key);
  }

  stop(): void {
    this.#stopped.abort();
    for (const ac of this.#rounds.values()) ac.abort();
    this.#rounds.clear();
  }

  async #round(t: ProbeTarget, key: string, signal: AbortSignal): Promise<void> {
    const { intervalMs, timeoutMs, log } = this.#opts;
    const both = AbortSignal.any([signal, this.#stopped.signal]);
    await this.#sem.with(async () => {
      const single = this.#gaveUp.has(key);
      const roundStart = Date.now();
      const deadline = roundStart + timeoutMs;
      // Docker's StartedAt, on the engine's clock (the same host's, usually); one in the future
      // or unreadable counts from now. An old container (a resync) gets the full interval.
      const startedAt = Date.parse(t.startedAt);
      const origin = Number.isNaN(startedAt) || startedAt > roundStart ? roundStart : startedAt;
      for (;;) {
        if (both.aborted) return;
        const left = deadline - Date.now();
        if (await probeOnce(t.url, Math.max(50, Math.min(1000, left)))) {
          if (both.aborted) return;
          this.#gaveUp.delete(key);
          this.#opts.onReady(t);
          return;
        }
        const pause = probeDelay(Date.now() - origin, intervalMs);
        if (single || Date.now() + pause >= deadline) break;
        await sleep(pause, both);
      }
      if (both.aborted || single) return;
      this.#gaveUp.add(key);
      log.warn(
        "readiness probe gave up; the instance stays critical, is probed once more at each resync, and follows Docker health if it has a HEALTHCHECK",
        {
          container: t.containerName,
          containerId: t.containerId.slice(0, 12),
          url: t.url,
          timeoutMs,
        },
      );
      this.#opts.onGiveUp?.(t);
    });
  }
}
