// Consul blocking-query index rules (https://developer.hashicorp.com/consul/api-docs/features/blocking):
// a response is news when its X-Consul-Index differs from the one we asked with; an index that
// goes backwards (a restarted or replaced Consul) resets to 0 so the next query answers at once;
// an index below 1 is a Consul bug that would make every query return at once, so it becomes 1.

export interface IndexStep {
  /** The index to send with the next query. */
  next: number;
  /** Whether the response carries data we have not seen. */
  changed: boolean;
  /** The index went backwards: whatever we held may be gone. */
  reset: boolean;
}

export function stepIndex(asked: number, returned: number): IndexStep {
  if (!Number.isFinite(returned) || returned < 1) return { next: 1, changed: asked === 0, reset: false };
  if (asked > 0 && returned < asked) return { next: 0, changed: true, reset: true };
  return { next: returned, changed: asked === 0 || returned !== asked, reset: false };
}

/** The HTTP timeout for a blocking query: Consul may add up to wait/16 of jitter. */
export function blockingTimeoutMs(waitMs: number): number {
  return waitMs + Math.ceil(waitMs / 16) + 5_000;
}

/** How long to pause before the next query so two never start closer than `floorMs`. */
export function floorDelay(startedAt: number, now: number, floorMs: number): number {
  return Math.max(0, startedAt + floorMs - now);
}
