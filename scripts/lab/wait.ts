// Waiting for the edge to route a service to exactly the instances Docker runs.

import http from "node:http";

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

function getOnce(url: URL, headers: Record<string, string>): Promise<{ status: number; instance?: string }> {
  // node:http rather than fetch: fetch drops a Host header, and routing by host is what some checks test.
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: url.hostname, port: url.port, path: url.pathname + url.search, headers, timeout: 3000 },
      (res) => {
        res.resume();
        res.on("end", () => {
          const inst = res.headers["x-instance"];
          resolve({ status: res.statusCode ?? 0, instance: typeof inst === "string" ? inst : undefined });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${url.href}: timeout`)));
    req.on("error", reject);
  });
}

async function sample(
  url: string,
  requests: number,
  headers: Record<string, string>,
): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  const u = new URL(url);
  for (let i = 0; i < requests; i++) {
    const r = await getOnce(u, headers);
    if (r.status >= 200 && r.status < 300 && r.instance)
      seen.set(r.instance, (seen.get(r.instance) ?? 0) + 1);
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
