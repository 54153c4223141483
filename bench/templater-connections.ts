// HTTP connections the templater holds to Consul, with 10 and then 1,000 services.
//   node bench/templater-connections.ts
// Counted inside the edge container (its network namespace holds only its own connections):
// established TCP connections to port 8500, sampled every 100 ms while idle, while 1,000
// services are registered, while they churn, and after. consul-template's model for the same
// job (one blocking query for the service list plus one per service) would hold 1,001.

import { establishedIn } from "../test/helpers/sockets.ts";
import {
  registerInBulk,
  runBench,
  sleep,
  startBench,
  type Bench,
  type CatalogInstance,
} from "./templater-harness.ts";

async function held(bench: Bench): Promise<number> {
  const r = await bench.edge.exec(["sh", "-c", "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null"]);
  return establishedIn(r.output, 8500);
}

/** Samples the connection count every 100 ms while `during` runs (and for `extraMs` after). */
async function sample(bench: Bench, during: () => Promise<void>, extraMs = 1000): Promise<number[]> {
  const counts: number[] = [];
  let done = false;
  const sampler = (async () => {
    while (!done) {
      counts.push(await held(bench));
      await sleep(100);
    }
  })();
  await during();
  await sleep(extraMs);
  done = true;
  await sampler;
  return counts;
}

const range = (c: number[]) => `min ${Math.min(...c)}, max ${Math.max(...c)} (${c.length} samples)`;

function services(n: number, port = 8080): CatalogInstance[] {
  return Array.from({ length: n }, (_, s) => ({
    node: `bench-node-${s % 10}`,
    id: `conn-${s}`,
    service: `conn-${s}`,
    address: `10.50.${Math.floor(s / 250)}.${(s % 250) + 1}`,
    port,
  }));
}

await runBench("templater-connections", async () => {
  const bench = await startBench();
  try {
    const url = bench.consul.url;
    await registerInBulk(url, services(10));
    await sleep(1000);
    const idle10 = await sample(bench, () => sleep(2000), 0);
    console.log(`10 services, idle:              ${range(idle10)}`);
    const burst = await sample(bench, () => registerInBulk(url, services(1000)));
    console.log(`registering 1,000 services:     ${range(burst)}`);
    const idle1000 = await sample(bench, () => sleep(2000), 0);
    console.log(`1,000 services, idle:           ${range(idle1000)}`);
    const churn = await sample(bench, async () => {
      for (let round = 0; round < 10; round++) {
        await registerInBulk(url, services(1000, 9000 + round).slice(round * 100, round * 100 + 100));
        await sleep(200);
      }
    });
    console.log(`1,000 services, 100 change every 200 ms: ${range(churn)}`);
    const requests = (await bench.edge.metrics()).filter((s) => s.name === "templater_consul_requests_total");
    console.log(
      `Consul requests by endpoint: ${requests.map((s) => `${s.labels.endpoint}/${s.labels.result} ${s.value}`).join(", ")}`,
    );
    console.log(
      "consul-template for 1,000 services: 1 + 1,000 = 1,001 blocking queries held — arithmetic from its " +
        "model (one watch for the service list, one per service), not measured: consul-template was not run",
    );
  } finally {
    await bench.scope.close();
  }
});
