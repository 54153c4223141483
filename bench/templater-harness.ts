// Shared set-up for the templater benchmarks: a Consul container and the real edge image on a
// network of their own, catalog registrations in bulk (/v1/txn, 64 operations each), the
// edge's "config applied" log lines, percentiles. Everything started is removed at the end.

import http from "node:http";
import { percentileText, summarise } from "./lib/stats.ts";
import { startConsul, type ConsulHandle } from "../test/helpers/consul.ts";
import { createNetwork, type TestNetwork } from "../test/helpers/docker.ts";
import { startEdge, type EdgeHandle, type EdgeOptions } from "../test/helpers/edge.ts";
import { Scope } from "../test/helpers/scope.ts";
import { createWorkload, type Workload } from "../test/helpers/workload.ts";

export interface Bench {
  scope: Scope;
  network: TestNetwork;
  consul: ConsulHandle;
  edge: EdgeHandle;
  workloads: Workload[];
}

export async function startBench(
  opts: { workloads?: number; edge?: Partial<EdgeOptions> } = {},
): Promise<Bench> {
  const scope = new Scope();
  try {
    const network = await createNetwork(scope, "dockside-bench");
    const consul = await startConsul(scope, { network, alias: "consul" });
    const workloads = await Promise.all(
      Array.from({ length: opts.workloads ?? 0 }, () => createWorkload(scope, { network: network.name })),
    );
    const edge = await startEdge(scope, { network, ...opts.edge });
    return { scope, network, consul, edge, workloads };
  } catch (err) {
    await scope.close();
    throw err;
  }
}

/** Runs a benchmark body and always removes what it started. */
export async function runBench(name: string, body: () => Promise<void>): Promise<void> {
  const started = Date.now();
  try {
    await body();
  } catch (err) {
    console.error(`${name}: failed: ${(err as Error).stack ?? err}`);
    process.exitCode = 1;
  } finally {
    console.log(`${name}: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
}

export function consulRequest(base: string, method: string, path: string, body?: unknown): Promise<string> {
  return new Promise((resolve, reject) => {
    // a connection of its own: the edge's connections to Consul are what the benchmarks count
    const req = http.request(`${base}${path}`, { method, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () =>
        res.statusCode === 200
          ? resolve(text)
          : reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`)),
      );
    });
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

export interface CatalogInstance {
  node: string;
  id: string;
  service: string;
  address: string;
  port: number;
  tags?: string[];
}

/** Registers instances in the catalog (no checks: passing) through /v1/txn, 64 operations a call. */
export async function registerInBulk(base: string, instances: CatalogInstance[]): Promise<void> {
  const nodes = [...new Set(instances.map((i) => i.node))];
  for (let i = 0; i < nodes.length; i += 64) {
    await consulRequest(
      base,
      "PUT",
      "/v1/txn",
      nodes
        .slice(i, i + 64)
        .map((n, k) => ({ Node: { Verb: "set", Node: { Node: n, Address: `10.255.0.${k + 1}` } } })),
    );
  }
  for (let i = 0; i < instances.length; i += 64) {
    await consulRequest(
      base,
      "PUT",
      "/v1/txn",
      instances.slice(i, i + 64).map((x) => ({
        Service: {
          Verb: "set",
          Node: x.node,
          Service: {
            ID: x.id,
            Service: x.service,
            Tags: x.tags ?? ["http"],
            Address: x.address,
            Port: x.port,
          },
        },
      })),
    );
  }
}

/** 1,000 services × 10 instances on 10 nodes, with fake (never contacted) addresses. */
export function bigCatalog(services = 1000, perService = 10, nodes = 10): CatalogInstance[] {
  const out: CatalogInstance[] = [];
  for (let s = 0; s < services; s++) {
    for (let i = 0; i < perService; i++) {
      const n = s * perService + i;
      out.push({
        node: `bench-node-${n % nodes}`,
        id: `svc-${s}-${i}`,
        service: `svc-${s}`,
        address: `10.${100 + Math.floor(n / 65_000)}.${Math.floor(n / 250) % 250}.${(n % 250) + 1}`,
        port: 8080,
      });
    }
  }
  return out;
}

export interface AppliedLine {
  ts: string;
  generation: string;
  services: number;
  renderMs: number;
  validateMs: number;
  reloadMs: number;
  applyMs: number;
  sinceChangeMs?: number;
}

export async function appliedLines(edge: EdgeHandle): Promise<AppliedLine[]> {
  return (await edge.logLines()).filter((l) => l.msg === "config applied") as unknown as AppliedLine[];
}

export function summary(values: number[], unit = "ms"): string {
  const f = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(1));
  return percentileText(summarise(values), (v) => `${f(v)} ${unit}`);
}

export { sleep } from "../lib/backoff.ts";
