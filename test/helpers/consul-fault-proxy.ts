// An HTTP proxy in front of a real Consul that can, on demand, answer every request
// itself with an HTML 200 (a captive portal, a load balancer's error page): the fault
// the registrator must not take for a confirmation.

import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Scope } from "./scope.ts";

export type FaultMode = "pass" | "html-200";

export interface FaultProxy {
  host: string;
  port: number;
  mode: FaultMode;
  /** Requests answered by the fault, by method and path. */
  faulted: string[];
}

export async function startConsulFaultProxy(
  scope: Scope,
  target: { host: string; port: number },
): Promise<FaultProxy> {
  const state: FaultProxy = { host: "127.0.0.1", port: 0, mode: "pass", faulted: [] };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  const server = http.createServer((req, res) => {
    if (state.mode === "html-200") {
      state.faulted.push(`${req.method} ${req.url}`);
      req.resume();
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<!doctype html><html><body><h1>Service temporarily unavailable</h1></body></html>");
      return;
    }
    const up = http.request(
      {
        host: target.host,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent,
      },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on("error", () => res.destroy());
    res.on("close", () => up.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.port = (server.address() as AddressInfo).port;
  scope.defer("consul fault proxy", async () => {
    server.closeAllConnections();
    agent.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return state;
}
