// Consul change → reload finished, with the default quiescence wait (100 ms min / 1 s max).
//   node bench/templater-latency.ts
// Each change registers one more instance of a new service; the clock stops when nginx, asked
// on a fresh connection every 5 ms, routes that service to the instance ("reload finished" as a
// client sees it). Two patterns: each change 1.5 s after the previous one was routed (isolated),
// and 300 ms after it (so each waits out the quiescence minimum); the spacing between the PUTs,
// which includes the routing time, is printed as measured. The edge's own figure (Consul
// answer → old workers no longer accepting) comes from its log.

import http from "node:http";
import { containerIp } from "../test/helpers/docker.ts";
import {
  appliedLines,
  consulRequest,
  runBench,
  sleep,
  startBench,
  summary,
  type Bench,
} from "./templater-harness.ts";

function status(base: string, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(`${base}${path}`, { agent: false, timeout: 1000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
  });
}

async function measure(bench: Bench, ip: string, label: string, count: number, gapMs: number): Promise<void> {
  const { consul, edge } = bench;
  const clientMs: number[] = [];
  const putAt: number[] = [];
  const before = (await appliedLines(edge)).length;
  for (let k = 0; k < count; k++) {
    const name = `${label}-${k}`;
    const t0 = performance.now();
    putAt.push(t0);
    await consulRequest(consul.url, "PUT", "/v1/agent/service/register", {
      ID: `${name}-1`,
      Name: name,
      Address: ip,
      Port: 8080,
      Tags: ["http"],
      Check: { TTL: "600s", Status: "passing" },
    });
    while ((await status(edge.url, `/${name}/`)) !== 200) {
      if (performance.now() - t0 > 10_000) throw new Error(`${name} not routed within 10 s`);
      await sleep(5);
    }
    clientMs.push(performance.now() - t0);
    await sleep(gapMs);
  }
  const lines = (await appliedLines(edge)).slice(before);
  const spacing = putAt.slice(1).map((t, i) => Math.round(t - putAt[i]!));
  console.log(`${label}: ${count} changes, each ${gapMs} ms after the previous one was routed`);
  console.log(`  spacing between the PUTs (measured):           ${summary(spacing)}`);
  console.log(
    `  registration → nginx routes it (client view): ${summary(clientMs.map((v) => Math.round(v)))}`,
  );
  console.log(
    `  Consul answer → reload finished (edge log):   ${summary(lines.map((l) => l.sinceChangeMs ?? NaN))}`,
  );
  console.log(
    `    of which nginx -t ${summary(lines.map((l) => l.validateMs))}; reload ${summary(lines.map((l) => l.reloadMs))}`,
  );
}

await runBench("templater-latency", async () => {
  const bench = await startBench({ workloads: 1 });
  try {
    const ip = await containerIp(bench.workloads[0]!.id, bench.network.name);
    await sleep(1500);
    await measure(bench, ip, "isolated", 40, 1500);
    await measure(bench, ip, "close", 40, 300);
  } finally {
    await bench.scope.close();
  }
});
