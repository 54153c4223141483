// The lab under scaling, measured end to end on its own compose project (free ports,
// removed at the end, also on Ctrl-C):
//  1. first request routed to a new instance, from two clocks: Docker's `start` event and the
//     moment `docker compose up -d --scale` returned (the compose process exited: issue 8's
//     clock), over --cycles lone scale-ups (web 1→2→1 with a quiet gap before each), --cycles
//     scale-ups right after a scale-down (both pooled too, for n ≥ 100 and a p99), and the 9
//     new instances of a 1→10 burst; for the 1→2 scale-ups, where the time went (demo-node's
//     and the registrator's own log lines, the templater's metrics);
//  2. failed requests while web scales 1→10→1, --bursts times, under a steady --rate;
//  3. nginx reloads per scale burst;
//  4. resident memory of the registrator and the templater.
//
//   node bench/lab-scaling.ts [--cycles 50] [--rate 200] [--bursts 3] [--post-every 3] [--trace]
// (--post-every n: every n-th request of the load is a POST, which nginx never retries; 0: GET only;
// --bursts 0 skips parts 2 and 3; --trace prints each 1→2 scale-up's steps)

import http from "node:http";
import { parseArgs } from "node:util";
import Docker from "dockerode";
import { sleep } from "../lib/backoff.ts";
import { waitForInstances } from "../scripts/lab/wait.ts";
import { startLoad } from "../test/helpers/load.ts";
import { benchLab } from "./lib/lab.ts";
import { followJsonLogs, jsonLogLines, type LogLine } from "./lib/container-logs.ts";
import { formatSummary, summarise } from "./lib/stats.ts";

const { values } = parseArgs({
  options: {
    cycles: { type: "string", default: "50" },
    rate: { type: "string", default: "200" },
    bursts: { type: "string", default: "3" },
    "post-every": { type: "string", default: "3" },
    trace: { type: "boolean", default: false },
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

/** Instances started in one phase: their routed latencies from both clocks, and those never routed. */
interface Routed {
  /** Docker's `start` event → first answer. */
  latencies: number[];
  /** `docker compose up` returned (process exit) → first answer; negative: answered before it returned. */
  fromCompose: number[];
  dropped: number;
  started: number;
}
const newRouted = (): Routed => ({ latencies: [], fromCompose: [], dropped: 0, started: 0 });

/** One 1→2 scale-up, each step on the host's clock (ms since the epoch). */
interface Trace {
  host: string;
  start: number;
  composeExit: number;
  /** demo-node's "listening" line. */
  listening?: number;
  /** When demo-node's process started: its "listening" line less the uptime it logged (Node's clock). */
  processStart?: number;
  /** The registrator's "registered service instance" line (its Consul call returned). */
  registered?: number;
  /** The registrator's line saying the instance's check is passing in Consul. */
  passing?: number;
  first: number;
  /** The templater's Consul answer → nginx confirmed the push (its metrics: sum and count deltas). */
  templaterMs?: number;
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

/** Sum and count of a histogram in the templater's metrics. */
async function histogram(ops: string, name: string): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(`${ops}/metrics`)).text();
  const value = (suffix: string) => {
    const line = text.split("\n").find((l) => l.startsWith(`${name}_${suffix} `));
    return line ? Number(line.split(/\s+/).pop()) : NaN;
  };
  return { sum: value("sum"), count: value("count") };
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

/** Per step of the traced scale-ups: n, p50, p90, max of the time between two marks. */
function printBreakdown(traces: readonly Trace[]): void {
  const step = (
    label: string,
    from: (t: Trace) => number | undefined,
    to: (t: Trace) => number | undefined,
  ) => {
    const d = traces.flatMap((t) => {
      const a = from(t);
      const b = to(t);
      return a === undefined || b === undefined ? [] : [b - a];
    });
    console.log(formatSummary(`  ${label}`, summarise(d)));
  };
  console.log(
    `where the time went, over ${traces.length} traced 1→2 scale-ups (ms; log lines have ms resolution):`,
  );
  const steps: [string, (t: Trace) => number | undefined, (t: Trace) => number | undefined][] = [
    ["start event → compose up returned", (t) => t.start, (t) => t.composeExit],
    ["start event → demo-node listening", (t) => t.start, (t) => t.listening],
    ["  start event → demo-node's process started (Node's clock)", (t) => t.start, (t) => t.processStart],
    [
      "  process started → listening (Node's own start, then demo-node's)",
      (t) => t.processStart,
      (t) => t.listening,
    ],
    ["start event → registered in Consul (check critical)", (t) => t.start, (t) => t.registered],
    ["demo-node listening → check passing in Consul (probe + Consul)", (t) => t.listening, (t) => t.passing],
    [
      "check passing in Consul → first answer (Consul → templater → nginx → probe)",
      (t) => t.passing,
      (t) => t.first,
    ],
    ["  of which templater: Consul answer → nginx confirmed push", () => 0, (t) => t.templaterMs],
    ["compose up returned → first answer", (t) => t.composeExit, (t) => t.first],
  ];
  for (const [label, from, to] of steps) step(label, from, to);
}

try {
  console.log(`bench: bringing up project ${lab.project}`);
  await lab.up({ web: 1, api: 1 });
  const edge = `http://${await lab.port("edge", 8080)}`;
  const ops = `http://${await lab.port("edge", 9102)}`;
  await waitForInstances(`${edge}/web/`, () => running("web"));

  // 1. → first routed request, for lone scale-ups (a quiet gap before each, longer than the
  //    templater's 1 s quiescence maximum) and for scale-ups right after a scale-down.
  const starts = watchStarts();
  const probe = firstSeen(edge, 5);
  const registrator = await lab.running("registrator");
  const regLog = await followJsonLogs(docker, registrator[0]!.id);
  /** The first answer of each container started since `before`, into `into`; counts the ones never routed. */
  const routedAfterStart = async (
    before: Set<string>,
    into: Routed,
    composeExit: number,
  ): Promise<{ id: string; host: string; start: number; first: number }[]> => {
    const out = [];
    for (const [id, at] of starts.times) {
      if (before.has(id)) continue;
      into.started++;
      const host = (await docker.getContainer(id).inspect()).Config.Hostname;
      const deadline = Date.now() + 10_000;
      while (!probe.seen.has(host) && Date.now() < deadline) await sleep(5);
      if (probe.seen.has(host)) {
        const first = probe.seen.get(host)!;
        into.latencies.push(first - at);
        into.fromCompose.push(first - composeExit);
        out.push({ id, host, start: at, first });
      } else {
        into.dropped++;
        console.log(
          `bench: ${host} not routed within 10 s of its start (left out of the latencies, counted)`,
        );
      }
    }
    return out;
  };
  /** The latency summaries from both clocks, and how many started instances they leave out because they were never routed. */
  const routedLines = (label: string, r: Routed) =>
    [
      `${formatSummary(`compose up returned → first request routed, ${label}`, summarise(r.fromCompose))}`,
      `${formatSummary(`container start → first request routed, ${label}`, summarise(r.latencies))}; not routed within 10 s: ${r.dropped} of ${r.started} started`,
    ].join("\n");
  const traces: Trace[] = [];
  /** Where one scale-up's time went: demo-node's log, the registrator's, the templater's metrics. */
  const trace = async (
    c: { id: string; host: string; start: number; first: number },
    composeExit: number,
    m0: { sum: number; count: number },
  ): Promise<void> => {
    const t: Trace = { host: c.host, start: c.start, composeExit, first: c.first };
    const demo = await jsonLogLines(docker, c.id).catch(() => [] as LogLine[]);
    const listening = demo.find((l) => l.msg === "listening");
    t.listening = listening?.at;
    const uptimeMs = listening?.fields.uptimeMs;
    if (t.listening !== undefined && typeof uptimeMs === "number") t.processStart = t.listening - uptimeMs;
    const name = (await docker.getContainer(c.id).inspect()).Name.replace(/^\//, "");
    // The lines of this run of the container: the registrator logged them after its start event.
    const mine = (l: LogLine) => l.at >= c.start - 1000;
    const reg = regLog.lines.find(
      (l) => mine(l) && l.msg === "registered service instance" && l.fields.container === name,
    );
    t.registered = reg?.at;
    if (reg?.fields.status === "passing") t.passing = reg.at;
    else if (reg) {
      const deadline = Date.now() + 1000;
      let pass: LogLine | undefined;
      while (
        !(pass = regLog.lines.find(
          (l) =>
            mine(l) &&
            l.fields.id === reg.fields.id &&
            ((l.msg === "check status" && l.fields.status === "passing") ||
              (l.msg === "updated service instance" && l.fields.status === "passing")),
        )) &&
        Date.now() < deadline
      )
        await sleep(10);
      t.passing = pass?.at;
    }
    const m1 = await histogram(ops, "templater_instance_change_to_live_seconds");
    if (m1.count > m0.count) t.templaterMs = ((m1.sum - m0.sum) / (m1.count - m0.count)) * 1000;
    traces.push(t);
    if (values.trace) {
      const rel = (v: number | undefined) => (v === undefined ? "-" : `${(v - t.start).toFixed(0)}`);
      console.log(
        `trace ${t.host}: ms after start event: compose exit ${rel(t.composeExit)}, process start ${rel(t.processStart)}, listening ${rel(t.listening)}, registered ${rel(t.registered)}, passing ${rel(t.passing)}, first answer ${rel(t.first)} (templater ${t.templaterMs?.toFixed(1) ?? "-"})`,
      );
    }
  };
  const pooled = newRouted();
  for (const [label, gapMs] of [
    ["lone scale-ups (2 s quiet before each)", 2000],
    ["scale-ups right after a scale-down", 0],
  ] as const) {
    const routed = newRouted();
    for (let i = 0; i < cycles; i++) {
      await sleep(gapMs);
      const before = new Set(starts.times.keys());
      const m0 = await histogram(ops, "templater_instance_change_to_live_seconds");
      const composeExit = await lab.scale({ web: 2 });
      // The bench's own event stream may deliver the start event a little after compose returned.
      const seenBy = Date.now() + 2000;
      while ([...starts.times.keys()].every((id) => before.has(id)) && Date.now() < seenBy) await sleep(2);
      const mark = routed.latencies.length;
      const fresh = await routedAfterStart(before, routed, composeExit);
      pooled.latencies.push(...routed.latencies.slice(mark));
      pooled.fromCompose.push(...routed.fromCompose.slice(mark));
      for (const c of fresh) await trace(c, composeExit, m0);
      await waitForInstances(`${edge}/web/`, () => running("web"));
      await lab.scale({ web: 1 });
      await waitForInstances(`${edge}/web/`, () => running("web"));
    }
    pooled.started += routed.started;
    pooled.dropped += routed.dropped;
    console.log(routedLines(label, routed));
  }
  console.log(routedLines("both kinds of 1→2 scale-up pooled", pooled));
  printBreakdown(traces);
  regLog.stop();
  if (bursts === 0) {
    probe.stop();
    starts.stop();
  }
  if (bursts > 0) await sleep(2000);

  // 2 + 3. --bursts rounds of 1→10→1 under one steady load; reloads per burst.
  if (bursts > 0) {
    const load = startLoad({ url: `${edge}/web/`, rate, postEvery, connections: 16, durationMs: 600_000 });
    await sleep(2000);
    const burstRouted = newRouted();
    const upReloads: number[] = [];
    const downReloads: number[] = [];
    for (let b = 0; b < bursts; b++) {
      const r0 = await reloads(ops);
      const beforeBurst = new Set(starts.times.keys());
      const composeExit = await lab.scale({ web: 10 });
      await waitForInstances(`${edge}/web/`, () => running("web"));
      await routedAfterStart(beforeBurst, burstRouted, composeExit);
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
    console.log(routedLines("the 9 new of each 1→10 burst", burstRouted));
    console.log(
      `reloads per burst: scale 1→10: ${upReloads.join(", ")}; scale 10→1: ${downReloads.join(", ")}`,
    );
    probe.stop();
    starts.stop();
  }

  // 4. memory.
  console.log(
    `RSS: registrator ${((await rssKiB("registrator", /main\.mjs/)) / 1024).toFixed(1)} MiB, templater ${((await rssKiB("edge", /main\.mjs/)) / 1024).toFixed(1)} MiB, nginx (all processes) ${((await rssKiB("edge", /nginx/)) / 1024).toFixed(1)} MiB`,
  );
} finally {
  await teardown();
}
