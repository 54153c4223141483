// A Consul agent restarted empty → every instance back, over --rounds restarts
// (default 10) with --count containers (default 20). The registrator is the shipped
// image with a resync of one hour, so only its watch of the node's services restores.
//
//   node bench/registrator-restore.ts [--rounds 10] [--count 20]
//
// The clock runs from the first answer of the restarted agent's HTTP API (polled every
// 20 ms from the host) to the moment its agent holds all --count instances again.

import "./registrator-env.ts";
import Consul from "consul";
import { docker } from "../test/helpers/docker.ts";
import { freePort, ownedIds } from "../test/helpers/registrator.ts";
import { waitFor } from "../test/helpers/wait.ts";
import { createWorkload } from "../test/helpers/workload.ts";
import {
  benchConsul,
  benchLabel,
  benchNetwork,
  fmt,
  intFlag,
  runRegistratorImage,
  startBench,
} from "./registrator-harness.ts";
import { summarise } from "./lib/stats.ts";

const until = (cond: () => Promise<boolean>, what: string, timeoutMs = 30_000) =>
  waitFor(cond, { what, timeoutMs, intervalMs: 20 });

async function main(): Promise<void> {
  const rounds = intFlag("rounds", 10);
  const count = intFlag("count", 20);
  const bench = startBench("registrator-restore");
  try {
    const net = await benchNetwork(bench);
    // A fixed host port: the agent is restarted, and the client must find it at the same address.
    const consul = await benchConsul(bench, net, { hostPort: await freePort() });
    const client = new Consul({ host: consul.host, port: consul.port });
    const reg = await runRegistratorImage(bench, net, ["REGISTRATOR_RESYNC=1h", "REGISTRATOR_CHECK_TTL=3h"]);
    await reg.waitFor("initial sync complete");
    const wanted = new Set<string>();
    for (let i = 0; i < count; i++) {
      const w = await createWorkload(bench.scope, {
        network: net.name,
        labels: { [benchLabel]: bench.run, SERVICE_NAME: "bench-restore" },
      });
      wanted.add(`${w.name}:8080`);
    }
    const identity = `bench-${bench.run}`;
    const all = async () =>
      (await ownedIds(client, identity)).filter((id) => wanted.has(id)).length === count;
    await until(all, `${count} registered`);

    const took: number[] = [];
    for (let r = 0; r < rounds; r++) {
      await docker.getContainer(consul.container.getId()).restart({ t: 1 });
      await until(async () => (await client.agent.self(), true), "the agent answers");
      const back = performance.now();
      await until(all, "all restored", 15_000);
      took.push(performance.now() - back);
      process.stdout.write(".");
    }
    process.stdout.write("\n");
    const s = summarise(took);
    console.log(
      `registrator-restore: agent answers → ${count} instances back  n=${s.n}  p50 ${fmt(s.p50)}  p90 ${fmt(s.p90)}  max ${fmt(s.max)}`,
    );
    client.destroy();
  } finally {
    await bench.cleanup();
  }
}

await main();
