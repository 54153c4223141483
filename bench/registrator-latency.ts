// `start` event → instance visible in Consul's catalog,
// and `kill` → gone, over --count containers (default 100) started one after another.
//
//   node bench/registrator-latency.ts [--count 100]
//
// Times are from Docker's own event timestamp (timeNano) to the moment a blocking
// query on /v1/health/service/<name> returns the change. (That is this script's own reader;
// the templater reads /v1/catalog/services, /v1/health/state/any and per-node lists instead.)

import "./registrator-env.ts";
import { createWorkload } from "../test/helpers/workload.ts";
import {
  benchConsul,
  benchLabel,
  benchNetwork,
  fmt,
  intFlag,
  runRegistratorImage,
  startBench,
  wallMs,
} from "./registrator-harness.ts";
import { percentileText, summarise } from "./lib/stats.ts";
import { docker } from "../test/helpers/docker.ts";

const service = "bench-latency";

/** Follows the catalog with blocking queries; records when each instance ID first appears and disappears. */
function watchCatalog(consulUrl: string, signal: AbortSignal) {
  const appeared = new Map<string, number>();
  const vanished = new Map<string, number>();
  let present = new Set<string>();
  const done = (async () => {
    let index = "0";
    while (!signal.aborted) {
      const res = await fetch(`${consulUrl}/v1/health/service/${service}?index=${index}&wait=5s`, { signal });
      const entries = (await res.json()) as { Service: { ID: string } }[];
      const now = wallMs();
      index = res.headers.get("x-consul-index") ?? index;
      const ids = new Set(entries.map((e) => e.Service.ID));
      for (const id of ids) if (!appeared.has(id)) appeared.set(id, now);
      for (const id of present) if (!ids.has(id) && !vanished.has(id)) vanished.set(id, now);
      present = ids;
    }
  })().catch((err: unknown) => {
    if (!signal.aborted) throw err;
  });
  return { appeared, vanished, done };
}

async function main(): Promise<void> {
  const count = intFlag("count", 100);
  const bench = startBench("registrator-latency");
  try {
    const net = await benchNetwork(bench);
    const consul = await benchConsul(bench, net);
    const reg = await runRegistratorImage(bench, net);
    await reg.waitFor("initial sync complete");

    // Docker's own timestamps of start and kill, for this run's containers.
    const started = new Map<string, number>();
    const killed = new Map<string, number>();
    const events = (await docker.getEvents({
      filters: { type: ["container"], event: ["start", "kill"], label: [`${benchLabel}=${bench.run}`] },
    })) as NodeJS.ReadableStream & { destroy(): void };
    events.on("data", (chunk: Buffer) => {
      for (const line of chunk.toString().split("\n").filter(Boolean)) {
        const nano = /"timeNano":(\d+)/.exec(line)?.[1];
        const id = /"Actor":\{"ID":"([0-9a-f]+)"/.exec(line)?.[1];
        if (!nano || !id) continue;
        const t = Number(BigInt(nano) / 1000n) / 1000; // ms, sub-ms precision
        (line.includes('"Action":"start"') ? started : killed).set(id, t);
      }
    });
    bench.scope.defer("event stream", () => events.destroy());

    const stop = new AbortController();
    const watch = watchCatalog(consul.url, stop.signal);
    const names = new Map<string, string>(); // container id → instance id
    const until = async (cond: () => boolean, what: string) => {
      const deadline = Date.now() + 10_000;
      while (!cond()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 2));
      }
    };

    process.stdout.write(`registrator-latency: ${count} containers, one at a time `);
    for (let i = 0; i < count; i++) {
      const w = await createWorkload(bench.scope, {
        network: net.name,
        labels: { [benchLabel]: bench.run, SERVICE_NAME: service },
      });
      names.set(w.id, `${w.name}:8080`);
      await until(() => watch.appeared.has(`${w.name}:8080`) && started.has(w.id), `${w.name} visible`);
      if (i % 10 === 9) process.stdout.write(".");
    }
    process.stdout.write("\n");
    for (const [id] of names) {
      await docker.getContainer(id).kill();
      await until(() => watch.vanished.has(names.get(id)!) && killed.has(id), `${id.slice(0, 12)} gone`);
    }
    stop.abort();

    const up = [...names].map(([cid, sid]) => watch.appeared.get(sid)! - started.get(cid)!);
    const down = [...names].map(([cid, sid]) => watch.vanished.get(sid)! - killed.get(cid)!);
    const row = (label: string, v: number[]) => {
      console.log(`  ${label.padEnd(34)} ${percentileText(summarise(v), fmt)}`);
    };
    console.log("registrator-latency results:");
    row("start event → visible in catalog", up);
    row("kill event → gone from catalog", down);
  } finally {
    await bench.cleanup();
  }
}

await main();
