// The HTTP server and its graceful shutdown: fail readiness, keep serving for the
// drain delay, stop accepting, let in-flight requests finish, exit within a bound.

import http from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../../../lib/log.ts";
import { createHandler, type HandlerOptions } from "./handler.ts";

export interface DemoServer {
  port: number;
  /** Resolves "clean" when every connection ended, "timeout" when some had to be cut. */
  shutdown(): Promise<"clean" | "timeout">;
}

export interface ServerOptions extends HandlerOptions {
  port: number;
  /**
   * Default: every address, IPv4 and IPv6 (Node's dual-stack `::`, or 0.0.0.0 where the kernel
   * has no IPv6). Naming an address costs ~13 ms before the first request can be taken: Node
   * passes it through dns.lookup, whose module and IP regexes load on that first use, and every
   * scale-up waits for this process to listen (bench/README.md, "demo-node's start").
   */
  host?: string;
  keepAliveTimeoutMs: number;
  drainDelayMs: number;
  shutdownTimeoutMs: number;
  log: Logger;
}

export async function startServer(o: ServerOptions): Promise<DemoServer> {
  const server = http.createServer(createHandler(o));
  server.keepAliveTimeout = o.keepAliveTimeoutMs;
  server.headersTimeout = o.keepAliveTimeoutMs + 1000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    if (o.host === undefined) server.listen(o.port, resolve);
    else server.listen(o.port, o.host, resolve);
  });
  const port = (server.address() as AddressInfo).port;

  let shutting: Promise<"clean" | "timeout"> | undefined;
  const shutdown = async (): Promise<"clean" | "timeout"> => {
    o.lifecycle.drain();
    o.log.info("draining: readiness now fails; still serving", { drainDelayMs: o.drainDelayMs });
    await sleep(o.drainDelayMs);
    const closed = new Promise<"clean">((resolve) => server.close(() => resolve("clean")));
    server.closeIdleConnections();
    o.log.info("stopped accepting; waiting for in-flight requests", { timeoutMs: o.shutdownTimeoutMs });
    const timer = sleep(o.shutdownTimeoutMs, "timeout" as const, { ref: false });
    const result = await Promise.race([closed, timer]);
    if (result === "timeout") server.closeAllConnections();
    return result;
  };
  return { port, shutdown: () => (shutting ??= shutdown()) };
}
