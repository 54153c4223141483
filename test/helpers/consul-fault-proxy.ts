// A fault-injecting HTTP proxy in front of a real Consul, for tests: it forwards every request
// as is until told to misbehave, then answers the matching requests (new ones, and those in
// flight when their upstream answer arrives — a blocking read that returns during a fault gets
// the fault too) with:
//   empty      200, JSON content type, empty body
//   html       200, an HTML page (a captive portal, a load balancer's error page)
//   truncated  200 with the first half of Consul's real body, then the end of the response
//   stall      200 with Consul's headers and the first half of its body, then nothing (the
//              connection stays open until the client gives up or the proxy closes, also
//              after the fault ends: only the client's idle timeout ends it)
// Listens on one address only (the test network's gateway, so containers reach it).

import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Scope } from "./scope.ts";

export type Fault = "none" | "empty" | "html" | "truncated" | "stall";

export interface FaultProxy {
  /** host:port to give as CONSUL_HTTP_ADDR. */
  addr: string;
  port: number;
  /** Sets the fault for requests whose path matches (default: every /v1/ path). */
  set(fault: Fault, match?: (path: string) => boolean): void;
  /** Requests answered with a fault, by fault. */
  faulted: Record<string, number>;
}

export async function startConsulFaultProxy(
  scope: Scope,
  opts: { listenHost: string; target: { host: string; port: number } },
): Promise<FaultProxy> {
  let fault: Fault = "none";
  let match: (path: string) => boolean = (p) => p.startsWith("/v1/");
  const faulted: Record<string, number> = {};
  const stalled = new Set<http.ServerResponse>();
  const active = (path: string): Fault => (fault !== "none" && match(path) ? fault : "none");

  const answer = (
    res: http.ServerResponse,
    f: Fault,
    upstream?: { headers: http.IncomingHttpHeaders; body: Buffer },
  ) => {
    faulted[f] = (faulted[f] ?? 0) + 1;
    if (f === "empty") return res.writeHead(200, { "content-type": "application/json" }).end();
    if (f === "html") {
      return res
        .writeHead(200, { "content-type": "text/html" })
        .end("<html><body><h1>Service temporarily unavailable</h1></body></html>\n");
    }
    const body = upstream?.body ?? Buffer.from('[{"Node":"n1","Address":"10.0.0.1"},{"Node":"n2"}]');
    const headers = { ...(upstream?.headers ?? { "content-type": "application/json" }) };
    delete headers["content-length"];
    delete headers["transfer-encoding"];
    res.writeHead(200, headers);
    res.write(body.subarray(0, Math.max(1, Math.floor(body.length / 2))));
    if (f === "truncated") return res.end();
    stalled.add(res); // stall: nothing more until the client gives up
    res.on("close", () => stalled.delete(res));
  };

  const server = http.createServer((req, res) => {
    const path = req.url ?? "/";
    const now = active(path);
    if (now === "empty" || now === "html") {
      req.resume();
      return answer(res, now);
    }
    const up = http.request(
      {
        host: opts.target.host,
        port: opts.target.port,
        method: req.method,
        path,
        headers: req.headers,
        agent: false,
      },
      (upRes) => {
        const chunks: Buffer[] = [];
        upRes.on("data", (c: Buffer) => chunks.push(c));
        upRes.on("end", () => {
          const body = Buffer.concat(chunks);
          const later = active(path);
          if (later !== "none") return answer(res, later, { headers: upRes.headers, body });
          res.writeHead(upRes.statusCode ?? 502, upRes.headers).end(body);
        });
        upRes.on("error", () => res.destroy());
      },
    );
    up.on("error", () => res.destroy());
    res.on("close", () => up.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, opts.listenHost, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  scope.defer("consul fault proxy", async () => {
    for (const r of stalled) r.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    addr: `${opts.listenHost}:${port}`,
    port,
    faulted,
    set(f, m) {
      fault = f;
      match = m ?? ((p) => p.startsWith("/v1/"));
    },
  };
}
