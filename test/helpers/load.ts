// An open-loop HTTP load generator: a steady request rate over keep-alive
// connections, counting every answer that is not 2xx and every connection error.
// Bounded by design: it stops at `durationMs` (or when stopped) and only targets the
// URL it is given (loopback, in tests and benchmarks).

import http from "node:http";

export interface LoadOptions {
  url: string;
  /** Requests per second. */
  rate: number;
  /** Hard stop; default 5 minutes. */
  durationMs?: number;
  /** Keep-alive connections at most; default 32. */
  connections?: number;
  /** Per-request timeout; default 5 s. */
  timeoutMs?: number;
  headers?: Record<string, string>;
  /** Every n-th request is a POST with a small JSON body (nginx never retries a POST); default none. */
  postEvery?: number;
}

export interface LoadFailure {
  at: number;
  what: string;
}

export interface LoadResult {
  sent: number;
  ok: number;
  failed: number;
  statuses: Record<string, number>;
  failures: LoadFailure[];
  latenciesMs: number[];
  instances: Record<string, number>;
  durationMs: number;
}

export interface Load {
  /** Stop sending, wait for answers in flight, return the counts. */
  stop(): Promise<LoadResult>;
  /** Counts so far. */
  snapshot(): LoadResult;
}

export function startLoad(opts: LoadOptions): Load {
  const url = new URL(opts.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.connections ?? 32 });
  const started = Date.now();
  const result: LoadResult = {
    sent: 0,
    ok: 0,
    failed: 0,
    statuses: {},
    failures: [],
    latenciesMs: [],
    instances: {},
    durationMs: 0,
  };
  const inflight = new Set<Promise<void>>();
  const fail = (what: string) => {
    result.failed++;
    if (result.failures.length < 200) result.failures.push({ at: Date.now() - started, what });
  };
  const one = () =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      result.sent++;
      const post = opts.postEvery !== undefined && result.sent % opts.postEvery === 0;
      const body = post ? JSON.stringify({ n: result.sent }) : undefined;
      const req = http.request(
        {
          method: post ? "POST" : "GET",
          host: url.hostname,
          port: url.port,
          path: url.pathname + url.search,
          agent,
          headers: post
            ? {
                ...opts.headers,
                "content-type": "application/json",
                "content-length": Buffer.byteLength(body!),
              }
            : opts.headers,
          timeout: opts.timeoutMs ?? 5000,
        },
        (res) => {
          res.resume();
          res.on("end", () => {
            const status = res.statusCode ?? 0;
            result.statuses[status] = (result.statuses[status] ?? 0) + 1;
            const instance = res.headers["x-instance"];
            if (typeof instance === "string")
              result.instances[instance] = (result.instances[instance] ?? 0) + 1;
            if (status >= 200 && status < 300) {
              result.ok++;
              result.latenciesMs.push(performance.now() - t0);
            } else fail(`${post ? "POST" : "GET"} HTTP ${status}`);
            resolve();
          });
          res.on("error", (err) => {
            fail(`response: ${(err as NodeJS.ErrnoException).code ?? err.message}`);
            resolve();
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", (err) => {
        fail(`${post ? "POST" : "GET"} request: ${(err as NodeJS.ErrnoException).code ?? err.message}`);
        resolve();
      });
      req.end(body);
    });

  // Paced by elapsed time, not by timer ticks, so a late tick sends what is due.
  let due = 0;
  const tick = setInterval(() => {
    const elapsed = Date.now() - started;
    if (elapsed >= (opts.durationMs ?? 300_000)) return void stopSending();
    const target = Math.floor((elapsed * opts.rate) / 1000);
    for (; due < target; due++) {
      const p = one();
      inflight.add(p);
      void p.then(() => inflight.delete(p));
    }
  }, 5);
  let stopped = false;
  function stopSending() {
    if (stopped) return;
    stopped = true;
    clearInterval(tick);
  }
  return {
    snapshot: () => ({ ...result, durationMs: Date.now() - started }),
    stop: async () => {
      stopSending();
      await Promise.all([...inflight]);
      agent.destroy();
      return { ...result, durationMs: Date.now() - started };
    },
  };
}
