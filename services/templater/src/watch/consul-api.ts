// The Consul reads the watcher needs, over lib/consul-client.ts (token, TLS, keep-alive agent,
// body idle timeout). Every answer is classified by lib/consul-answer.ts and shape-checked here
// before the watcher sees it: what is not "ok" is thrown as a ConsulAnswerError (denied,
// malformed or unreachable) and changes nothing. Each read can be cancelled and reports
// X-Consul-Index.

import * as z from "../../../../lib/answer-schema.ts";
import {
  classifyAnswer,
  trustedValue,
  type ConsulAnswer,
  type RawAnswer,
} from "../../../../lib/consul-answer.ts";
import { consulRequest, type ConsulHttp } from "../../../../lib/consul-client.ts";
import { blockingTimeoutMs } from "../core/blocking-index.ts";
import type { CatalogNode, ConsulCheck, ConsulService, ServiceAnswer } from "../core/catalog.ts";

export interface Answer<T> {
  index: number;
  body: T;
}

/** `index` 0 asks for the current state at once; above 0 the read blocks up to `waitMs`. */
export interface BlockingRead {
  index: number;
  waitMs: number;
}

/** One instance as `/v1/catalog/service/<name>` returns it, with its node. */
export interface ServiceInstance {
  node: string;
  nodeAddress: string;
  service: ConsulService;
}

export interface CatalogApi {
  /** `/v1/catalog/services`: name → tags; its index moves on every (de)registration or change. */
  services(read: BlockingRead, signal: AbortSignal): Promise<Answer<Record<string, string[]>>>;
  /** `/v1/health/state/any`: every check of the datacenter; its index moves on any status change. */
  checks(read: BlockingRead, signal: AbortSignal): Promise<Answer<ConsulCheck[]>>;
  /** `/v1/catalog/nodes` */
  nodes(signal: AbortSignal): Promise<{ Node: string; Address: string }[]>;
  /** `/v1/catalog/node/<node>`: the node's services (null when the node is gone) and the index they are as of. */
  nodeServices(
    node: string,
    signal: AbortSignal,
  ): Promise<{ services: ConsulService[] | null; index: number }>;
  /**
   * `/v1/health/service/<name>`: one service's instances with their checks (node checks
   * included). Its index is the service's own: a blocking read returns when this service changes.
   * A blocking read answered with an index not above `read.index` (it timed out) has no body:
   * it tells nothing new, so it is not parsed (1,000 watches time out ~20 times a second).
   */
  serviceHealth(
    name: string,
    read: BlockingRead,
    signal: AbortSignal,
  ): Promise<Answer<ServiceAnswer | undefined>>;
  /**
   * `/v1/catalog/service/<name>`: one service's instances. Consul 1.8 filters the per-node read
   * by instance ID under ACLs, so a token allowed `service "web"` sees nothing there; this read
   * honours service-name rules.
   */
  serviceInstances(name: string, signal: AbortSignal): Promise<ServiceInstance[]>;
}

/** Node (or service) reads in flight at once while the catalog is read again. */
export const nodeReadConcurrency = 4;
/**
 * Connections the whole-catalog watcher may hold to Consul: the two long polls and the node
 * reads, whatever the number of services. The per-service watches (service-watches.ts) add at
 * most --consul-service-watches more.
 */
export const maxConsulSockets = 2 + nodeReadConcurrency;

/** A plain (non-blocking) read that has not answered by then is a failure. */
const plainTimeoutMs = 5_000;

// The shapes the templater relies on (Consul 1.8+). Extra fields are ignored; a missing or
// mistyped field the templater uses makes the whole answer malformed.
const tags = z.nullable(z.array(z.string()));
const meta = z.nullable(z.record(z.string(), z.string()));
const servicesShape = z.record(z.string(), tags);
const checkShape = z.object({
  Node: z.string(),
  CheckID: z.string(),
  Status: z.string(),
  ServiceID: z.string(),
});
const checksShape = z.array(checkShape);
const nodesShape = z.array(z.object({ Node: z.string(), Address: z.string() }));
const serviceShape = z.object({
  ID: z.string(),
  Service: z.string(),
  Tags: tags,
  Address: z.string(),
  Port: z.number(),
  Meta: z.optional(meta),
});
const serviceHealthShape = z.array(
  z.object({
    Node: z.object({ Node: z.string(), Address: z.string() }),
    Service: serviceShape,
    Checks: z.nullable(z.array(checkShape)),
  }),
);
const nodeServicesShape = z.nullable(z.object({ Services: z.nullable(z.record(z.string(), serviceShape)) }));
const serviceInstancesShape = z.array(
  z.object({
    Node: z.string(),
    Address: z.string(),
    ServiceID: z.string(),
    ServiceName: z.string(),
    ServiceTags: tags,
    ServiceAddress: z.string(),
    ServicePort: z.number(),
    ServiceMeta: z.optional(meta),
  }),
);

function blocking(read: BlockingRead): { query: Record<string, string>; headersTimeoutMs: number } {
  if (read.index <= 0) return { query: {}, headersTimeoutMs: plainTimeoutMs };
  return {
    query: { index: String(read.index), wait: `${read.waitMs}ms` },
    headersTimeoutMs: blockingTimeoutMs(read.waitMs),
  };
}

export function consulCatalogApi(client: ConsulHttp): CatalogApi {
  /** One read: Consul's raw answer or the error, unless the read was cancelled. */
  const request = async (
    path: string,
    signal: AbortSignal,
    b: { query: Record<string, string>; headersTimeoutMs: number } = blocking({ index: 0, waitMs: 0 }),
  ): Promise<RawAnswer | Error> => {
    const raw = await consulRequest(client, { path, signal, ...b }).catch((err: Error) => err);
    signal.throwIfAborted();
    return raw;
  };
  /** A 200's X-Consul-Index (NaN when missing); undefined for anything else. */
  const okIndex = (raw: RawAnswer | Error): number | undefined => {
    if (raw instanceof Error || raw.status !== 200) return undefined;
    const header = raw.headers["x-consul-index"];
    return typeof header === "string" ? Number(header) : NaN;
  };
  const trusted = <T>(
    raw: RawAnswer | Error,
    schema: z.AnswerSchema<T>,
    /** The last trusted answer's text and value: the same text again is the same value (not parsed again). */
    last?: { text: string; value: T },
  ): Answer<T> & { text: string } => {
    const index = okIndex(raw);
    if (last && index !== undefined && !(raw instanceof Error) && raw.body === last.text) {
      return { index, body: last.value, text: last.text };
    }
    const answer: ConsulAnswer<T> = classifyAnswer(raw, schema);
    return {
      index: answer.kind === "ok" ? answer.index : NaN,
      body: trustedValue(answer),
      text: raw instanceof Error ? "" : raw.body,
    };
  };
  const get = async <T>(
    path: string,
    schema: z.AnswerSchema<T>,
    signal: AbortSignal,
    b?: { query: Record<string, string>; headersTimeoutMs: number },
    last?: { text: string; value: T },
  ): Promise<Answer<T> & { text: string }> => trusted(await request(path, signal, b), schema, last);
  // The listing comes back unchanged on every instance change (its index moves, its text does
  // not): at 1,000 services, parsing and checking it again each time is most of a change's work.
  let listing: { text: string; value: Record<string, string[]> } | undefined;
  const seg = encodeURIComponent;
  return {
    services: async (read, signal) => {
      const a = await get("/v1/catalog/services", servicesShape, signal, blocking(read), listing);
      if (a.body !== listing?.value) {
        const value = Object.fromEntries(Object.entries(a.body).map(([k, v]) => [k, v ?? []]));
        listing = { text: a.text, value };
      }
      return { index: a.index, body: listing.value };
    },
    checks: (read, signal) => get("/v1/health/state/any", checksShape, signal, blocking(read)),
    nodes: async (signal) => (await get("/v1/catalog/nodes", nodesShape, signal)).body,
    nodeServices: async (node, signal) => {
      const r = await get(`/v1/catalog/node/${seg(node)}`, nodeServicesShape, signal);
      const services = r.body
        ? Object.values(r.body.Services ?? {}).map((s) => ({ ...s, Meta: s.Meta ?? null }))
        : null;
      return { services, index: r.index };
    },
    serviceHealth: async (name, read, signal) => {
      const raw = await request(`/v1/health/service/${seg(name)}`, signal, blocking(read));
      // A long poll that timed out (its index not above the one asked for) is never used: not parsed.
      const index = okIndex(raw);
      if (index !== undefined && Number.isSafeInteger(index) && index >= 1 && index <= read.index)
        return { index, body: undefined };
      const a = trusted(raw, serviceHealthShape);
      const nodes = new Map<string, CatalogNode>();
      const checks: ConsulCheck[] = [];
      const nodeChecks = new Set<string>();
      for (const e of a.body) {
        const node = nodes.get(e.Node.Node) ?? { node: e.Node.Node, address: e.Node.Address, services: [] };
        nodes.set(node.node, node);
        node.services.push({ ...e.Service, Meta: e.Service.Meta ?? null });
        for (const c of e.Checks ?? []) {
          // Node checks come once per instance on the node: keep one.
          if (c.ServiceID === "") {
            const k = `${c.Node}\u0000${c.CheckID}`;
            if (nodeChecks.has(k)) continue;
            nodeChecks.add(k);
          }
          checks.push({ Node: c.Node, CheckID: c.CheckID, Status: c.Status, ServiceID: c.ServiceID });
        }
      }
      return { index: a.index, body: { name, index: a.index, nodes: [...nodes.values()], checks } };
    },
    serviceInstances: async (name, signal) =>
      (await get(`/v1/catalog/service/${seg(name)}`, serviceInstancesShape, signal)).body.map((i) => ({
        node: i.Node,
        nodeAddress: i.Address,
        service: {
          ID: i.ServiceID,
          Service: i.ServiceName,
          Tags: i.ServiceTags,
          Address: i.ServiceAddress,
          Port: i.ServicePort,
          Meta: i.ServiceMeta ?? null,
        },
      })),
  };
}
