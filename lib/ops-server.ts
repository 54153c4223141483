// The operations endpoint every service exposes: /health, /metrics (Prometheus) and
// whatever extra read-only routes a service adds (e.g. the templater's status page).

import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { Logger } from "./log.ts";

export interface HealthReport {
  ok: boolean;
  [detail: string]: unknown;
}

export type Route = (req: http.IncomingMessage, url: URL) => Promise<RouteResult> | RouteResult;
export interface RouteResult {
  status?: number;
  type?: string;
  body: string;
}

export interface OpsServerOptions {
  host: string;
  port: number;
  registry: Registry;
  health: () => HealthReport;
  routes?: Record<string, Route>;
  log: Logger;
}

export interface OpsServer {
  port: number;
  close(): Promise<void>;
}

export function json(value: unknown, status = 200): RouteResult {
  return { status, type: "application/json", body: JSON.stringify(value, null, 2) + "\n" };
}

export async function startOpsServer(opts: OpsServerOptions): Promise<OpsServer> {
  const routes: Record<string, Route> = {
    "/health": () => {
      const report = opts.health();
      return json(report, report.ok ? 200 : 503);
    },
    "/metrics": async () => ({ type: opts.registry.contentType, body: await opts.registry.metrics() }),
    ...opts.routes,
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://ops");
    const route = req.method === "GET" || req.method === "HEAD" ? routes[url.pathname] : undefined;
    if (!route) {
      res
        .writeHead(404, { "content-type": "text/plain" })
        .end(`not found; try ${Object.keys(routes).join(" ")}\n`);
      return;
    }
    Promise.resolve()
      .then(() => route(req, url))
      .then((r) => {
        res.writeHead(r.status ?? 200, { "content-type": r.type ?? "text/plain; charset=utf-8" });
        res.end(req.method === "HEAD" ? undefined : r.body);
      })
      .catch((err: unknown) => {
        opts.log.error("ops route failed", { path: url.pathname, err });
        res.writeHead(500, { "content-type": "text/plain" }).end("internal error\n");
      });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  opts.log.info("ops endpoint listening", { host: opts.host, port });
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
