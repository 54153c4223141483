// Start-up sync of --count running containers (default 1000, tiny busybox ones),
// then the registrator's memory at idle with all of them registered.
//
//   node bench/registrator-sync.ts [--count 1000] [--idle 35]
//
// Creating a thousand containers needs ~8-13 MB of host memory each (mostly their
// containerd shims); creation stops early, with a note, when less than 3 GiB is left.
// Every container is removed at the end, also on Ctrl-C.

import "./registrator-env.ts";
import { readFileSync } from "node:fs";
import { mapLimit } from "../lib/concurrency.ts";
import { images } from "../test/helpers/images.ts";
import { docker, testLabel } from "../test/helpers/docker.ts";
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
import { mib } from "./lib/stats.ts";

const service = "bench-sync";
const reserveBytes = 3 * 1024 ** 3;

function memAvailable(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync("/proc/meminfo", "utf8"));
  return m ? Number(m[1]) * 1024 : Infinity;
}

async function count(url: string): Promise<number> {
  const res = await fetch(url);
  const body = (await res.json()) as unknown[] | Record<string, unknown>;
  return Array.isArray(body) ? body.length : Object.keys(body).length;
}

async function until(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return wallMs();
}

async function main(): Promise<void> {
  const wanted = intFlag("count", 1000);
  const idleSeconds = intFlag("idle", 35);
  const bench = startBench("registrator-sync");
  try {
    const net = await benchNetwork(bench);
    const image = images().busybox;
    let stoppedEarly = false;
    const t0 = Date.now();
    process.stdout.write(`registrator-sync: creating ${wanted} containers `);
    const created = await mapLimit(Array.from({ length: wanted }), 8, async (_, i) => {
      if (stoppedEarly || memAvailable() < reserveBytes) {
        stoppedEarly = true;
        return false;
      }
      const c = await docker.createContainer({
        name: `dockside-bench-${bench.run}-${i}`,
        Image: image,
        Cmd: ["sleep", "86400"],
        Labels: { [testLabel]: "1", [benchLabel]: bench.run, SERVICE_NAME: service },
        ExposedPorts: { "8080/tcp": {} },
        HostConfig: { NetworkMode: net.name },
      });
      await c.start();
      if (i % 100 === 99) process.stdout.write(".");
      return true;
    });
    const n = created.filter(Boolean).length;
    console.log(` ${n} running (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    if (stoppedEarly)
      console.log(`registrator-sync: stopped at ${n}: less than ${mib(reserveBytes)} of memory left`);

    const consul = await benchConsul(bench, net);
    const owned = `${consul.url}/v1/agent/services?filter=${encodeURIComponent(`Meta.dockside_owner == "bench-${bench.run}"`)}`;
    const reg = await runRegistratorImage(bench, net);
    const spawned = reg.startedAt;
    const ready = await reg.waitFor("registrator started");
    const readyAt = Date.parse(String(ready.ts));
    const synced = await reg.waitFor("initial sync complete", 120_000);
    const syncedAt = Date.parse(String(synced.ts));
    const inAgent = await until(async () => (await count(owned)) >= n, 120_000, "all in the agent");
    const inCatalog = await until(
      async () => (await count(`${consul.url}/v1/catalog/service/${service}`)) >= n,
      120_000,
      "all in the catalog",
    );
    const rssAfterSync = reg.rssBytes();

    process.stdout.write(`registrator-sync: idle for ${idleSeconds} s (resync every 30 s) `);
    const samples: number[] = [];
    for (let s = 0; s < idleSeconds; s++) {
      await new Promise((r) => setTimeout(r, 1000));
      samples.push(reg.rssBytes());
      if (s % 5 === 4) process.stdout.write(".");
    }
    console.log("");
    const metrics = await (await fetch(`${reg.opsUrl}/metrics`)).text();
    const metric = (name: string) =>
      Number(new RegExp(`^${name}\\{scope="full"\\} (\\S+)$`, "m").exec(metrics)?.[1]);
    const fullCount = metric("registrator_reconcile_duration_seconds_count");
    const fullSum = metric("registrator_reconcile_duration_seconds_sum");

    console.log(`registrator-sync results (${n} containers):`);
    console.log(`  container start → "registrator started"    ${fmt(readyAt - spawned)}`);
    console.log(`  initial full sync (registrator's own timing) ${fmt(Number(synced.ms))}`);
    console.log(`  container start → initial sync complete    ${fmt(syncedAt - spawned)}`);
    console.log(`  container start → all ${n} in the agent    ${fmt(inAgent - spawned)}`);
    console.log(`  container start → all ${n} in the catalog  ${fmt(inCatalog - spawned)}`);
    console.log(`  full syncs so far: ${fullCount}, mean ${fmt((fullSum / fullCount) * 1000)}`);
    console.log(`  RSS right after the sync                   ${mib(rssAfterSync)}`);
    console.log(`  RSS at idle: last ${mib(samples.at(-1)!)}, max ${mib(Math.max(...samples))}`);
  } finally {
    await bench.cleanup();
  }
}

await main();
