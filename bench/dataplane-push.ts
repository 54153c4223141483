// Dynamic upstreams at scale: the edge image (templater + nginx with Lua) and a Consul
// container on a network of their own (removed at the end, also on Ctrl-C).
//  1. --services × --instances registered in Consul's catalog (addresses are never contacted);
//     time until nginx has every set, and the templater's RSS then and after --idle seconds;
//  2. --changes single-instance changes (an instance of a random service deregistered, then
//     registered again, --gap ms apart), each timed end to end: from just before the bench sends
//     the write to Consul to the moment nginx holds a new set version, read by a poller inside
//     the edge (node on the control endpoint's /version: the same clock as the host's; --poll
//     wait, the default, is a long poll nginx answers within 1 ms of a push, --poll 1ms asks
//     every millisecond). Also the templater's own histogram `templater_instance_change_to_live_seconds`
//     (Consul answer carrying the change → nginx confirmed the pushed set), and nginx reloads
//     meanwhile (goal 0), how long Consul took to answer each write, and when Consul answered
//     the bench's own long poll on the changed service (Consul's share). --watches sets
//     TEMPLATER_CONSUL_SERVICE_WATCHES (the fast path: a long poll per service; Consul's
//     per-client connection limit is raised to match); 0: none. --service-wait sets
//     TEMPLATER_CONSUL_SERVICE_WAIT (default: the templater's, 5m).
//     (Polling /metrics per change was tried first: with 10,000 instances each scrape is slow
//     enough that 200 changes did not finish in 15 minutes on the loaded machine.)
//
//   node bench/dataplane-push.ts [--services 1000] [--instances 10] [--changes 200] [--gap 500] [--idle 10] [--watches 1000] [--service-wait 5m] [--poll wait|1ms]

import { parseArgs } from "node:util";
import { sleep } from "../lib/backoff.ts";
import { startConsul } from "../test/helpers/consul.ts";
import { createNetwork, docker } from "../test/helpers/docker.ts";
import { startEdge } from "../test/helpers/edge.ts";
import { parseMetrics, sampleValue } from "../test/helpers/prometheus.ts";
import { Scope } from "../test/helpers/scope.ts";
import { catalogArgs, catalogLoad } from "./lib/catalog-changes.ts";
import { percentileText, summarise } from "./lib/stats.ts";
import { templaterProcess } from "./lib/templater-process.ts";

process.env.TESTCONTAINERS_RYUK_DISABLED ??= "true";
process.env.TESTCONTAINERS_HOST_OVERRIDE ??= "localhost";
const { values } = parseArgs({
  options: {
    ...catalogArgs,
    gap: { type: "string", default: "500" },
    idle: { type: "string", default: "10" },
    watches: { type: "string", default: "1000" },
    "service-wait": { type: "string" },
    poll: { type: "string", default: "wait" },
  },
});
if (values.poll !== "wait" && values.poll !== "1ms") throw new Error(`--poll ${values.poll}: wait or 1ms`);
const services = Number(values.services);
const instances = Number(values.instances);
const changes = Number(values.changes);
const idleS = Number(values.idle);
const gapMs = Number(values.gap);
const watches = Number(values.watches);
const scope = new Scope();
process.once("SIGINT", () => void scope.close().then(() => process.exit(130)));
/**
 * Follows the control endpoint's /version inside the edge (node is there: the templater runs on
 * it) and records when the version moved, by the container's clock (the host's). --poll wait:
 * a long poll (`/version?after=<last>`, answered by nginx within a millisecond of a push);
 * --poll 1ms: a request every millisecond, as before (1,000 requests a second on the same CPUs
 * as what it measures).
 */
async function versionPoller(containerId: string, mode: "wait" | "1ms") {
  const script = `
    const http = require("node:http");
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const wait = ${JSON.stringify(mode === "wait")};
    let last = "0";
    const tick = () => http.get({ host: "127.0.0.1", port: 9103, path: wait ? "/version?after=" + last : "/version", agent }, (res) => {
      let b = ""; res.on("data", (d) => (b += d)); res.on("end", () => {
        const v = b.trim(); if (v !== last) { last = v; process.stdout.write(Date.now() + " " + v + "\\n"); }
        if (wait) tick(); else setTimeout(tick, 1);
      });
    }).on("error", () => setTimeout(tick, 50));
    tick();`;
  const exec = await docker.getContainer(containerId).exec({
    Cmd: ["node", "-e", script],
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = await exec.start({});
  const changes: { at: number; version: string }[] = [];
  let buf = "";
  stream.on("data", (chunk: Buffer) => {
    // Docker multiplexes stdout and stderr in frames with an 8-byte header.
    for (let off = 0; off + 8 <= chunk.length;) {
      const len = chunk.readUInt32BE(off + 4);
      buf += chunk.subarray(off + 8, off + 8 + len).toString();
      off += 8 + len;
    }
    for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
      const [at, version] = buf.slice(0, nl).split(" ");
      buf = buf.slice(nl + 1);
      changes.push({ at: Number(at), version: version ?? "" });
    }
  });
  await sleep(500);
  return { changes, stop: () => stream.destroy() };
}

try {
  const network = await createNetwork(scope);
  const consul = await startConsul(scope, { network, alias: "consul", maxConnsPerClient: watches + 100 });
  const edge = await startEdge(scope, {
    network,
    env: {
      TEMPLATER_CONSUL_SERVICE_WATCHES: String(watches),
      ...(values["service-wait"] ? { TEMPLATER_CONSUL_SERVICE_WAIT: values["service-wait"] } : {}),
    },
  });
  const metric = async (name: string, labels: Record<string, string> = {}) =>
    sampleValue(parseMetrics(await (await fetch(`${edge.opsUrl}/metrics`)).text()), name, labels);
  const rss = async () => (await templaterProcess(edge.container)).rssMiB;
  const gcFigures = async () => {
    const samples = parseMetrics(await (await fetch(`${edge.opsUrl}/metrics`)).text());
    const gc = "templater_nodejs_gc_duration_seconds";
    if (samples.types.get(gc) !== "histogram") throw new Error(`metric ${gc} is not exposed`);
    // A kind of collection that has not run yet has no sample: 0 of it (a short run has no
    // incremental marking).
    const of = (kind: string, what: string) =>
      samples.find((x) => x.name === `${gc}_${what}` && x.labels.kind === kind)?.value ?? 0;
    const k = (kind: string) => ({ n: of(kind, "count"), sum: of(kind, "sum") });
    return { minor: k("minor"), major: k("major"), incremental: k("incremental") };
  };
  const histograms = [
    "templater_instance_change_to_live_seconds",
    "templater_view_duration_seconds",
    "templater_set_push_duration_seconds",
  ];
  const histogram = (samples: ReturnType<typeof parseMetrics>, name: string) =>
    samples
      .filter((x) => x.name === `${name}_bucket`)
      .map((x) => ({ le: x.labels.le === "+Inf" ? Infinity : Number(x.labels.le), count: x.value }))
      .sort((a, b) => a.le - b.le);
  console.log(`bench: templater RSS at start, no services: ${(await rss()).toFixed(1)} MiB`);

  const load = catalogLoad(consul.url, services, instances);
  scope.defer("catalog load", () => load.close());
  const t0 = Date.now();
  await load.register();
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

  // The routes of the 1,000 new services may still be reloading: count from when they are done.
  let reloads0 = await metric("templater_reloads_total", { result: "ok" });
  for (let still = 0; still < 3;) {
    await sleep(1000);
    const r = await metric("templater_reloads_total", { result: "ok" });
    still = r === reloads0 ? still + 1 : 0;
    reloads0 = r;
  }
  const gc0 = await gcFigures();
  const metricsText = async () => parseMetrics(await (await fetch(`${edge.opsUrl}/metrics`)).text());
  const before = await metricsText();
  const versions = await versionPoller(edge.container.id, values.poll);
  const { sent, writeMs, wokeAt } = await load.changes(changes, gapMs);
  await sleep(3000);
  versions.stop();
  const live: number[] = [];
  const watchMs: number[] = [];
  const wokeToLive: number[] = [];
  let missed = 0;
  for (const [c, at] of sent.entries()) {
    const next = sent[c + 1] ?? Infinity;
    const seen = versions.changes.find((v) => v.at >= at && v.at < next);
    if (seen) live.push(seen.at - at);
    else missed++;
    const woke = wokeAt[c];
    if (woke === undefined) continue;
    watchMs.push(woke - at);
    if (seen) wokeToLive.push(seen.at - woke);
  }
  console.log(
    `Consul write sent → new set version in nginx (end to end, poller in the edge: ${values.poll === "wait" ? "long poll" : "every 1 ms"}), ${services} × ${instances}, ` +
      `${watches} service watches (wait ${values["service-wait"] ?? "5m, the default"}): ${percentileText(summarise(live), (v) => `${v} ms`)}; changes with no new version before the next: ${missed} of ${sent.length}`,
  );
  console.log(
    `bench: Consul write sent → Consul's answer to it (the write alone, in the end to end above): ${percentileText(summarise(writeMs), (v) => `${v} ms`)}`,
  );
  console.log(
    `bench: Consul write sent → Consul answers a watch of that service (the bench's own long poll, from the host; Consul's share of end to end): ${percentileText(summarise(watchMs), (v) => `${v} ms`)}; no answer: ${sent.length - watchMs.length}`,
  );
  console.log(
    `bench: Consul answers that watch → new set version in nginx (the rest of end to end: the templater, the push, the poller): ${percentileText(summarise(wokeToLive), (v) => `${v} ms`)}`,
  );
  const gc1 = await gcFigures();
  console.log(
    `bench: the templater's garbage collections during the changes: ` +
      (["minor", "major", "incremental"] as const)
        .map(
          (k) => `${k} n=${gc1[k].n - gc0[k].n} ${((gc1[k].sum - gc0[k].sum) * 1000).toFixed(0)} ms in all`,
        )
        .join(", "),
  );
  const after = await metricsText();
  for (const name of histograms) {
    const b0 = histogram(before, name);
    const buckets = histogram(after, name).map((b, k) => ({
      le: b.le,
      count: b.count - (b0[k]?.count ?? 0),
    }));
    const n = buckets.at(-1)?.count ?? 0;
    const bound = (q: number) => buckets.find((b) => b.count >= q * n)?.le;
    console.log(
      `bench: ${name} over the changes (templater's histogram, bucket bounds): n=${n} p50 ≤ ${bound(0.5)} s, ` +
        `p90 ≤ ${bound(0.9)} s` +
        (n >= 100 ? `, p99 ≤ ${bound(0.99)} s` : ""),
    );
  }
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
  await scope.close();
}
