// Is the Docker event stream stalled? An idle engine sends nothing, so silence alone
// proves nothing: the watchdog asks Docker for the events of a closed window
// (since…until, answered at once) and compares them with what the stream delivered.

/** Docker's "seconds.nanoseconds" (or "seconds", or "seconds.millis") → nanoseconds. */
export function sinceNanos(since: string): bigint {
  const [s, frac = ""] = since.split(".");
  return BigInt(s || "0") * 1_000_000_000n + BigInt((frac + "000000000").slice(0, 9));
}

/** Milliseconds since the epoch → Docker's "seconds.millis". */
export function sinceOf(ms: number): string {
  return (ms / 1000).toFixed(3);
}

/**
 * Events the window query found that the stream has not delivered: newer than the
 * newest event the stream gave. Non-empty means the stream is stalled.
 */
export function undelivered<T extends { since?: string }>(window: readonly T[], lastDelivered: string): T[] {
  const last = sinceNanos(lastDelivered);
  return window.filter((e) => e.since !== undefined && sinceNanos(e.since) > last);
}
