// The watchdog of the Docker event stream: while the stream is open, every interval, the
// events of the window since the last one delivered (up to `lagMs` ago) are asked for; any
// the stream did not deliver means it is stalled (core/stall.ts decides). A window query
// that fails is Docker being unreachable, which the stream itself reports.

import { sleep } from "../../../../lib/backoff.ts";
import { describeError, type Logger } from "../../../../lib/log.ts";
import type { DockerEvent } from "../core/events.ts";
import { sinceNanos, sinceOf, undelivered } from "../core/stall.ts";
import type { DockerSource } from "./source.ts";

export interface StallWatchOptions {
  eventsBetween: NonNullable<DockerSource["eventsBetween"]>;
  intervalMs: number;
  /** Events younger than this are not expected on the stream yet. */
  lagMs: number;
  /** The `since` of the last event the stream delivered (or of when it opened). */
  lastSince: () => string;
  /** The stream is stalled: `missed` are the events it did not deliver. Called once; the watch ends. */
  onStall(missed: readonly DockerEvent[]): void;
  log: Logger;
  /** The connection's signal: the watch ends with it. */
  signal: AbortSignal;
}

export async function watchForStall(o: StallWatchOptions): Promise<void> {
  const { signal, intervalMs, lagMs, lastSince } = o;
  while (!signal.aborted) {
    await sleep(intervalMs, signal);
    if (signal.aborted) return;
    const from = lastSince();
    const until = sinceOf(Date.now() - lagMs);
    if (sinceNanos(until) <= sinceNanos(from)) continue;
    try {
      const window = await o.eventsBetween(
        from,
        until,
        AbortSignal.any([signal, AbortSignal.timeout(intervalMs + 2000)]),
      );
      const missed = undelivered(window, lastSince());
      if (missed.length === 0) continue;
      o.onStall(missed);
      return;
    } catch (err) {
      if (signal.aborted) return;
      o.log.debug("event stream check failed", { err: describeError(err) });
    }
  }
}
