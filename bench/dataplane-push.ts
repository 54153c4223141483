// Dynamic upstreams at scale: the edge image (templater + nginx with Lua) and a Consul
// container on a network of their own (removed at the end, also on Ctrl-C).
//  1. --services × --instances registered in Consul's catalog (addresses are never contacted);
//     time until nginx has every set, and the templater's RSS then and after --idle seconds;
//  2. --changes single-instance changes (one instance of a random service deregistered or
//     registered again, --gap ms apart): the templater's own histogram
//     `templater_instance_change_to_live_seconds` (Consul answer carrying the change → nginx
//     confirmed the pushed set), read once at the end, and nginx reloads meanwhile (goal 0).
//     (Polling /metrics per change was tried first: with 10,000 instances each scrape is slow
//     enough that 200 changes did not finish in 15 minutes on the loaded machine.)
//
//   node bench/dataplane-push.ts [--services 1000] [--instances 10] [--changes 200] [--gap 500] [--idle 10]

import http from "node:http";
import { parseArgs } from "node:util";
import { sleep } from "../lib/backoff.ts";
import { startConsul } from "../test/helpers/consul.ts";
import { createNetwork, docker } from "../test/helpers/docker.ts";
import { startEdge } from "../test/helpers/edge.ts";
import { parseMetrics, sampleValue } from "../test/helpers/prometheus.ts";
import { Scope } from "../test/helpers/scope.ts";

process.env.TESTCONTAINERS_RYUK_DISABLED ??= "true";
process.env.TESTCONTAINERS_HOST_OVERRIDE ??= "localhost";
const { values } = parseArgs({
  options: {
    services: { type: "string", default: "1000" },
    instances: { type: "string", default: "10" },
    changes: { type: "string", default: "200" },
    idle: { type: "string", default: "10" },
    gap: { type: "string", default: "500" },
  },
});
const services = Number(values.services);
const instances = Number(values.instances);
const changes = Number(values.changes);
const idleS = Number(values.idle);
const gapMs = Number(values.gap);
const scope = new Scope();
process.once("SIGINT", () => void scope.close().then(() => process.exit(130)));
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

function put(base: string, path: string, body: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method: "PUT", agent }, (res) => {
      res.resume();
      res.on("end", () =>
        res.statusCode === 200 ? resolve() : reject(new Error(`${path}: ${res.statusCode}`)),
      );
    });
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

const entry = (s: number, i: number) => ({
  Node: `host-${i}`,
  Address: `10.200.${i}.1`,
  Service: {
    ID: `b${s}-${i}`,
    Service: `b${s}`,
    Tags: ["http"],
    Address: `10.${100 + (s % 100)}.${Math.floor(s / 100)}.${i + 1}`,
    Port: 8080,
  },
});

try {
  const network = await createNetwork(scope);
  const consul = await startConsul(scope, { network, alias: "consul" });
  const edge = await startEdge(scope, { network });
  const metric = async (name: string, labels: Record<string, string> = {}) =>
    sampleValue(parseMetrics(await (await fetch(`${edge.opsUrl}/metrics`)).text()), name, labels) ?? 0;
  const rss = async () => {
    const top = (await edge.container.top({ ps_args: "-o pid,rss,args" })) as { Processes: string[][] };
    const row = top.Processes.find(
      (p) => (p[2] ?? "").includes("/app/main.mjs") && !(p[2] ?? "").includes("edge-init"),
    );
    return row ? Number(row[1]) / 1024 : NaN; // docker top: pid, rss (KiB), args
  };
  console.log(`bench: templater RSS at start, no services: ${(await rss()).toFixed(1)} MiB`);

  const t0 = Date.now();
  const queue: ReturnType<typeof entry>[] = [];
  for (let s = 0; s < services; s++) for (let i = 0; i < instances; i++) queue.push(entry(s, i));
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let e = queue.shift(); e; e = queue.shift()) await put(consul.url, "/v1/catalog/register", e);
    }),
  );
  const registered = Date.now();
  for (;;) {
    const st = (await (await fetch(`${edge.opsUrl}/status`)).json()) as {
      services: { upstream: string[] }[];
    };
    const peers = st.services.reduce((n, s) => n + s.upstream.length, 0);
    if (peers === services * instances) break;
    await sleep(200);
  }
  console.log(
    `bench: ${services} × ${instances} registered in ${((registered - t0) / 1000).toFixed(1)} s; every set in nginx ${((Date.now() - registered) / 1000).toFixed(1)} s after the last write`,
  );
  console.log(`bench: templater RSS with ${services} × ${instances}: ${(await rss()).toFixed(1)} MiB`);
  await sleep(idleS * 1000);
  console.log(`bench: templater RSS after ${idleS} s idle: ${(await rss()).toFixed(1)} MiB`);

  const reloads0 = await metric("templater_reloads_total", { result: "ok" });
  for (let c = 0; c < changes; c++) {
    const s = Math.floor(Math.random() * services);
    const i = Math.floor(Math.random() * instances);
    if (c % 2 === 0)
      await put(consul.url, "/v1/catalog/deregister", { Node: `host-${i}`, ServiceID: `b${s}-${i}` });
    else await put(consul.url, "/v1/catalog/register", entry(s, i));
    await sleep(gapMs);
  }
  await sleep(3000);
  const samples = parseMetrics(await (await fetch(`${edge.opsUrl}/metrics`)).text());
  const buckets = samples
    .filter((x) => x.name === "templater_instance_change_to_live_seconds_bucket")
    .map((x) => ({ le: x.labels.le === "+Inf" ? Infinity : Number(x.labels.le), count: x.value }))
    .sort((a, b) => a.le - b.le);
  const n = buckets.at(-1)?.count ?? 0;
  const bound = (q: number) => buckets.find((b) => b.count >= q * n)?.le;
  console.log(
    `Consul change → pushed set confirmed by nginx, ${services} × ${instances}, dynamic mode (templater's histogram): ` +
      `n=${n} p50 ≤ ${bound(0.5)} s, p90 ≤ ${bound(0.9)} s` +
      (n >= 100 ? `, p99 ≤ ${bound(0.99)} s` : "") +
      " (bucket bounds)",
  );
  console.log(
    `bench: nginx reloads during the ${changes} changes: ${(await metric("templater_reloads_total", { result: "ok" })) - reloads0}`,
  );
  const host = (await docker.info()) as { NCPU: number };
  console.log(
    `bench: machine: ${host.NCPU} CPUs; load average now ${(await import("node:os"))
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
  );
} finally {
  agent.destroy();
  await scope.close();
}
