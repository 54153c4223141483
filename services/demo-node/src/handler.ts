// What each request gets. The identity answer is the point of the demo: which
// instance of which service answered, so round-robin and scaling can be seen.

import type { IncomingMessage, ServerResponse } from "node:http";
import type { Lifecycle } from "./lifecycle.ts";

export interface HandlerOptions {
  name: string;
  version: string;
  instance: string;
  latencyMs: number;
  errorRate: number;
  lifecycle: Lifecycle;
  now?: () => number;
  random?: () => number;
}

export interface Answer {
  status: number;
  body: Record<string, unknown>;
  /** Milliseconds to wait before answering. */
  delayMs: number;
}

/** Decides the answer to a request; no I/O. */
export function answer(method: string, path: string, o: HandlerOptions): Answer {
  const now = (o.now ?? Date.now)();
  const phase = o.lifecycle.phase(now);
  if (path === "/healthz") return { status: 200, body: { status: "alive", phase }, delayMs: 0 };
  if (path === "/readyz") {
    return { status: phase === "ready" ? 200 : 503, body: { status: phase }, delayMs: 0 };
  }
  const identity = {
    service: o.name,
    instance: o.instance,
    version: o.version,
    uptimeMs: now - o.lifecycle.startedAt,
    method,
    path,
  };
  if (o.errorRate > 0 && (o.random ?? Math.random)() < o.errorRate) {
    return {
      status: 500,
      body: { ...identity, error: "injected failure (DEMO_ERROR_RATE)" },
      delayMs: o.latencyMs,
    };
  }
  return { status: 200, body: identity, delayMs: o.latencyMs };
}

export function createHandler(o: HandlerOptions) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const path = new URL(req.url ?? "/", "http://demo").pathname;
    const a = answer(req.method ?? "GET", path, o);
    const send = () => {
      const body = JSON.stringify(a.body) + "\n";
      const headers: Record<string, string | number> = {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
        "x-instance": o.instance,
      };
      // While draining, ask every client (nginx) to drop its keep-alive connection after this
      // answer, so no idle connection is left for the close to race with.
      if (o.lifecycle.draining) headers.connection = "close";
      res.writeHead(a.status, headers);
      res.end(req.method === "HEAD" ? undefined : body);
    };
    if (a.delayMs > 0) setTimeout(send, a.delayMs);
    else send();
  };
}
