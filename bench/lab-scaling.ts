// The lab under scaling, measured end to end on its own compose project (free ports,
// removed at the end, also on Ctrl-C):
//  1. container start → first request routed to it, over --cycles lone scale-ups (web 1→2→1
//     with a quiet gap before each), --cycles scale-ups right after a scale-down, and the 9
//     new instances of a 1→10 burst;
//  2. failed requests while web scales 1→10→1, --bursts times, under a steady --rate;
//  3. nginx reloads per scale burst;
//  4. resident memory of the registrator and the templater.
//
//   node bench/lab-scaling.ts [--cycles 50] [--rate 200] [--bursts 3] [--post-every 3]
// (--post-every n: every n-th request of the load is a POST, which nginx never retries; 0: GET only)

import http from "node:http";
import { parseArgs } from "node:util";
import Docker from "dockerode";
import { sleep } from "../lib/backoff.ts";
import { waitForInstances } from "../scripts/lab/wait.ts";
import { startLoad } from "../test/helpers/load.ts";
import { benchLab } from "./lib/lab.ts";
import { formatSummary, summarise } from "./lib/stats.ts";

const { values } = parseArgs({
  options: {
    cycles: { type: "string", default: "50" },
    rate: { type: "string", default: "200" },
    bursts: { type: "string", default: "3" },
    "post-every": { type: "string", default: "3" },
  },
});
const cycles = Number(values.cycles);
const rate = Number(values.rate);
const bursts = Number(values.bursts);
const postEvery = Number(values["post-every"]) || undefined;
const docker = new Docker();
const { lab, teardown } = benchLab(`dockside-bench-${process.pid}`, {
  DOCKSIDE_HTTP_PORT: "0",
  DOCKSIDE_CONSUL_PORT: "0",
  DOCKSIDE_OPS_PORT: "0",
});

/** Instances started in one phase: their start → routed latencies, and those never routed. */
interface Routed {
  latencies: number[];
  dropped: number;
  started: number;
}
const running = async (s: string) => (await lab.running(s)).map((c) => c.hostname);

/** Sends a request every `everyMs` over keep-alive and records when each instance first answered. */
function firstSeen(edge: string, everyMs: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const seen = new Map<string, number>();
  const url = new URL(`${edge}/web/`);
  const timer = setInterval(() => {
    http
      .get({ host: url.hostname, port: url.port, path: url.pathname, agent }, (res) => {
        const at = Date.now();
        const inst = res.headers["x-instance"];
        if (typeof inst === "string" && !seen.has(inst)) seen.set(inst, at);
        res.resume();
      })
      .on("error", () => {});
  }, everyMs);
  return { seen, stop: () => (clearInterval(timer), agent.destroy()) };
}

/** Start time (Docker's clock) of every web container of the project, by container id. */
function watchStarts() {
  const times = new Map<string, number>();
  let stream: { destroy(): void } | undefined;
  void docker
    .getEvents({
      filters: {
        type: ["container"],
        event: ["start"],
        label: [`com.docker.compose.project=${lab.project}`, "com.docker.compose.service=web"],
      },
    })
    .then((events) => {
      stream = events as unknown as { destroy(): void };
      events.on("data", (chunk: Buffer) => {
        for (const line of chunk.toString().split("\n").filter(Boolean)) {
          const e = JSON.parse(line) as { Actor: { ID: string }; timeNano: number };
          times.set(e.Actor.ID, e.timeNano / 1e6);
        }
      });
    });
  return { times, stop: () => stream?.destroy() };
}

/** Reload count from the templater's metrics, on the edge's ops listener. */
async function reloads(ops: string): Promise<number> {
  const text = await (await fetch(`${ops}/metrics`)).text();
  const line = text.split("\n").find((l) => /^templater_reloads_total(\{[^}]*\})?\s/.test(l));
  return line ? Number(line.split(/\s+/).pop()) : NaN;
}

async function rssKiB(service: string, pattern: RegExp): Promise<number> {
  const [c] = await lab.running(service);
  if (!c) return NaN;
  // docker top needs the pid column; the others are ours.
  const top = await docker.getContainer(c.id).top({ ps_args: "-o pid,rss,args" });
  const processes = (top.Processes ?? []) as string[][];
  return processes.filter((p) => pattern.test(p[2] ?? "")).reduce((sum, p) => sum + Number(p[1]), 0);
}

try {
  console.log(`bench: bringing up project ${lab.project}`);
  await lab.up({ web: 1, api: 1 });
  const edge = `http://${await lab.port("edge", 8080)}`;
  const ops = `http://${await lab.port("edge", 9102)}`;
  await waitForInstances(`${edge}/web/`, () => running("web"));

  // 1. start → first routed request, for lone scale-ups (a quiet gap before each, longer than the
  //    templater's 1 s quiescence maximum) and for scale-ups right after a scale-down.
  const starts = watchStarts();
  const probe = firstSeen(edge, 5);
  /** Start → first routed request of each container started since `before`, into `into`; counts the ones never routed. */
  const routedAfterStart = async (before: Set<string>, into: Routed): Promise<void> => {
    for (const [id, at] of starts.times) {
      if (before.has(id)) continue;
      into.started++;
      const host = (await docker.getContainer(id).inspect()).Config.Hostname;
      const deadline = Date.now() + 10_000;
      while (!probe.seen.has(host) && Date.now() < deadline) await sleep(5);
      if (probe.seen.has(host)) into.latencies.push(probe.seen.get(host)! - at);
      else {
        into.dropped++;
        console.log(
          `bench: ${host} not routed within 10 s of its start (left out of the latencies, counted)`,
        );
      }
    }
  };
  /** The latency summary, and how many started instances it leaves out because they were never routed. */
  const routedLine = (label: string, r: Routed) =>
    `${formatSummary(label, summarise(r.latencies))}; not routed within 10 s: ${r.dropped} of ${r.started} started`;
  for (const [label, gapMs] of [
    ["lone scale-ups (2 s quiet before each)", 2000],
    ["scale-ups right after a scale-down", 0],
  ] as const) {
    const routed: Routed = { latencies: [], dropped: 0, started: 0 };
    for (let i = 0; i < cycles; i++) {
      await sleep(gapMs);
      const before = new Set(starts.times.keys());
      await lab.scale({ web: 2 });
      await waitForInstances(`${edge}/web/`, () => running("web"));
      await routedAfterStart(before, routed);
      await lab.scale({ web: 1 });
      await waitForInstances(`${edge}/web/`, () => running("web"));
    }
    console.log(routedLine(`container start → first request routed, ${label}`, routed));
  }
  await sleep(2000);

  // 2 + 3. --bursts rounds of 1→10→1 under one steady load; reloads per burst.
  const load = startLoad({ url: `${edge}/web/`, rate, postEvery, connections: 16, durationMs: 600_000 });
  await sleep(2000);
  const burstRouted: Routed = { latencies: [], dropped: 0, started: 0 };
  const upReloads: number[] = [];
  const downReloads: number[] = [];
  for (let b = 0; b < bursts; b++) {
    const r0 = await reloads(ops);
    const beforeBurst = new Set(starts.times.keys());
    await lab.scale({ web: 10 });
    await waitForInstances(`${edge}/web/`, () => running("web"));
    await routedAfterStart(beforeBurst, burstRouted);
    const r1 = await reloads(ops);
    await sleep(2000);
    await lab.scale({ web: 1 });
    await waitForInstances(`${edge}/web/`, () => running("web"));
    await sleep(2000);
    upReloads.push(r1 - r0);
    downReloads.push((await reloads(ops)) - r1);
  }
  const result = await load.stop();
  console.log(
    `${bursts} × 1→10→1 at ${rate} req/s${postEvery ? ` (every ${postEvery}th a POST)` : ""} for ${(result.durationMs / 1000).toFixed(1)} s: sent ${result.sent}, ok ${result.ok}, failed ${result.failed}` +
      (result.failed ? ` (${JSON.stringify(result.failures.slice(0, 5))})` : ""),
  );
  console.log(formatSummary("  request latency through the edge", summarise(result.latenciesMs)));
  console.log(
    routedLine("container start → first request routed, the 9 new of each 1→10 burst", burstRouted),
  );
  console.log(
    `reloads per burst: scale 1→10: ${upReloads.join(", ")}; scale 10→1: ${downReloads.join(", ")}`,
  );
  probe.stop();
  starts.stop();

  // 4. memory.
  console.log(
    `RSS: registrator ${((await rssKiB("registrator", /main\.mjs/)) / 1024).toFixed(1)} MiB, templater ${((await rssKiB("edge", /main\.mjs/)) / 1024).toFixed(1)} MiB, nginx (all processes) ${((await rssKiB("edge", /nginx/)) / 1024).toFixed(1)} MiB`,
  );
} finally {
  await teardown();
}
