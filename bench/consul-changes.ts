// Consul alone, as bench/dataplane-push.ts loads it but with no templater and no edge: how long
// its own share of "Consul change → live" takes on this machine. --services × --instances
// registered in the catalog (addresses never contacted), then --changes single-instance changes
// --gap ms apart, each timed from just before the bench sends the write: Consul's answer to the
// write, and Consul's answer to the bench's long poll on the changed service's health.
//
//   node bench/consul-changes.ts [--services 1000] [--instances 10] [--changes 200] [--gap 300]

import os from "node:os";
import { parseArgs } from "node:util";
import { sleep } from "../lib/backoff.ts";
import { startConsul } from "../test/helpers/consul.ts";
import { createNetwork } from "../test/helpers/docker.ts";
import { Scope } from "../test/helpers/scope.ts";
import { catalogArgs, catalogLoad } from "./lib/catalog-changes.ts";
import { percentileText, summarise } from "./lib/stats.ts";

process.env.TESTCONTAINERS_RYUK_DISABLED ??= "true";
process.env.TESTCONTAINERS_HOST_OVERRIDE ??= "localhost";
const { values } = parseArgs({
  options: catalogArgs,
});
const services = Number(values.services);
const instances = Number(values.instances);
const scope = new Scope();
process.once("SIGINT", () => void scope.close().then(() => process.exit(130)));
try {
  const network = await createNetwork(scope);
  const consul = await startConsul(scope, { network, alias: "consul" });
  const load = catalogLoad(consul.url, services, instances);
  scope.defer("catalog load", () => load.close());
  await load.register();
  await sleep(5000);
  const load0 = os.loadavg()[0]!.toFixed(1);
  const { sent, writeMs, wokeAt } = await load.changes(Number(values.changes), Number(values.gap));
  const watchMs = wokeAt.flatMap((at, c) => (at === undefined ? [] : [at - sent[c]!]));
  const ms = (v: number) => `${v} ms`;
  console.log(
    `bench: Consul alone, ${services} × ${instances}, no other client; load average ${load0} at the start`,
  );
  console.log(`bench: write sent → Consul's answer to it: ${percentileText(summarise(writeMs), ms)}`);
  console.log(
    `bench: write sent → Consul answers a watch of that service: ${percentileText(summarise(watchMs), ms)}; no answer: ${sent.length - watchMs.length}`,
  );
  console.log(
    `bench: machine: ${os.cpus().length} CPUs; load average now ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
  );
} finally {
  await scope.close();
}
