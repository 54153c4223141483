// Waiting for the edge to route a service to exactly the instances Docker runs.

export interface RouteCheck {
  /** Instances (X-Instance) seen answering, with counts. */
  seen: Map<string, number>;
  missing: string[];
  unexpected: string[];
}

/** Pure: compare what answered with what should. */
export function compareInstances(expected: readonly string[], seen: Map<string, number>): RouteCheck {
  return {
    seen,
    missing: expected.filter((e) => !seen.has(e)),
    unexpected: [...seen.keys()].filter((s) => !expected.includes(s)),
  };
}

async function sample(
  url: string,
  requests: number,
  headers: Record<string, string>,
): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  for (let i = 0; i < requests; i++) {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(3000) });
    await res.arrayBuffer();
    const inst = res.headers.get("x-instance");
    if (res.ok && inst) seen.set(inst, (seen.get(inst) ?? 0) + 1);
  }
  return seen;
}

/**
 * Polls `url` until the set of instances answering equals `expected()`: every expected
 * one answers and no other does in a window of requests (round-robin makes a window of
 * 3×N requests reach each instance).
 */
export async function waitForInstances(
  url: string,
  expected: () => Promise<string[]>,
  opts: { timeoutMs?: number; headers?: Record<string, string> } = {},
): Promise<RouteCheck> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  let last: RouteCheck | undefined;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const want = await expected();
      last = compareInstances(want, await sample(url, Math.max(6, want.length * 3), opts.headers ?? {}));
      if (want.length > 0 && last.missing.length === 0 && last.unexpected.length === 0) return last;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const detail = last
    ? `missing ${JSON.stringify(last.missing)}, unexpected ${JSON.stringify(last.unexpected)}`
    : `no answer (${(lastError as Error | undefined)?.message ?? "unknown"})`;
  throw new Error(`${url} did not route to exactly the running instances in time: ${detail}`);
}
