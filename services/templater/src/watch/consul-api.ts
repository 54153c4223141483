// The four Consul reads the watcher needs, over the `consul` client (token, TLS and agent come
// from lib/consul-client.ts). Each read can be cancelled and reports X-Consul-Index.

import { EventEmitter } from "node:events";
import type { IncomingMessage } from "node:http";
import type Consul from "consul";
import { blockingTimeoutMs } from "../core/blocking-index.ts";
import type { ConsulCheck, ConsulService } from "../core/catalog.ts";

export interface Answer<T> {
  index: number;
  body: T;
}

/** `index` 0 asks for the current state at once; above 0 the read blocks up to `waitMs`. */
export interface BlockingRead {
  index: number;
  waitMs: number;
}

export interface CatalogApi {
  /** `/v1/catalog/services`: its index moves on every service (de)registration or change. */
  services(read: BlockingRead, signal: AbortSignal): Promise<Answer<Record<string, string[]>>>;
  /** `/v1/health/state/any`: every check of the datacenter; its index moves on any status change. */
  checks(read: BlockingRead, signal: AbortSignal): Promise<Answer<ConsulCheck[]>>;
  /** `/v1/catalog/nodes` */
  nodes(signal: AbortSignal): Promise<{ Node: string; Address: string }[]>;
  /** `/v1/catalog/node/<node>`: the node's services; null when the node is gone. */
  nodeServices(node: string, signal: AbortSignal): Promise<ConsulService[] | null>;
}

/** Node reads in flight at once while the catalog is read again. */
export const nodeReadConcurrency = 4;
/**
 * Connections the templater may hold to Consul: the two long polls and the node reads.
 * A constant, whatever the number of services (consul-template holds one per service).
 */
export const maxConsulSockets = 2 + nodeReadConcurrency;

type Call = (options: Record<string, unknown>) => Promise<unknown>;

const plainTimeoutMs = 10_000;

async function call<T>(
  fn: Call,
  options: Record<string, unknown>,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<Answer<T>> {
  signal.throwIfAborted();
  // The client cancels a request when its ctx emits "cancel", and returns [response, body] when
  // ctx.includeResponse is set; that is how we get X-Consul-Index.
  const ctx = Object.assign(new EventEmitter(), { includeResponse: true });
  const cancel = () => ctx.emit("cancel");
  signal.addEventListener("abort", cancel, { once: true });
  try {
    const [res, body] = (await fn({ ...options, ctx, timeout: timeoutMs })) as [IncomingMessage, T];
    return { index: Number(res.headers["x-consul-index"]), body };
  } finally {
    signal.removeEventListener("abort", cancel);
  }
}

function blocking(read: BlockingRead): { options: Record<string, unknown>; timeoutMs: number } {
  if (read.index <= 0) return { options: {}, timeoutMs: plainTimeoutMs };
  return {
    options: { index: String(read.index), wait: `${read.waitMs}ms` },
    timeoutMs: blockingTimeoutMs(read.waitMs),
  };
}

export function consulCatalogApi(consul: Consul): CatalogApi {
  const services = consul.catalog.service.list.bind(consul.catalog.service) as unknown as Call;
  const state = consul.health.state.bind(consul.health) as unknown as Call;
  const nodes = consul.catalog.node.list.bind(consul.catalog.node) as unknown as Call;
  const nodeServices = consul.catalog.node.services.bind(consul.catalog.node) as unknown as Call;
  return {
    services: (read, signal) => {
      const b = blocking(read);
      return call(services, b.options, signal, b.timeoutMs);
    },
    checks: (read, signal) => {
      const b = blocking(read);
      return call(state, { state: "any", ...b.options }, signal, b.timeoutMs);
    },
    nodes: async (signal) =>
      (await call<{ Node: string; Address: string }[]>(nodes, {}, signal, plainTimeoutMs)).body,
    nodeServices: async (node, signal) => {
      const r = await call<{ Services?: Record<string, ConsulService> | null } | null>(
        nodeServices,
        { node },
        signal,
        plainTimeoutMs,
      );
      if (!r.body) return null;
      return Object.values(r.body.Services ?? {});
    },
  };
}
