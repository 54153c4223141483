// A mass scale-down under load, traced per instance: web 3→40 (waiting until all 40 answer),
// then at once 40→3, --rounds times, with a steady keep-alive GET load on /web/, on the lab's own
// compose project (free ports, removed at the end, also on Ctrl-C). For each instance that
// leaves: Docker's `kill` event (SIGTERM: the instance starts draining), the registrator's
// "deregistered service instance" line (its Consul call returned), and the moment the edge's
// live upstream for web (its /status, polled every 20 ms from the host) no longer lists it. The
// instance stops accepting after its drain (DEMO_DRAIN_DELAY); a request nginx sends it after
// that fails its connection and is tried on another instance.
//
//   node bench/lab-scale-down.ts [--rounds 3] [--rate 50] [--peak 40]

import { parseArgs } from "node:util";
import Docker from "dockerode";
import { sleep } from "../lib/backoff.ts";
import { waitForInstances } from "../scripts/lab/wait.ts";
import { startLoad } from "../test/helpers/load.ts";
import { jsonLogLines } from "./lib/container-logs.ts";
import { benchLab } from "./lib/lab.ts";
import { formatSummary, summarise } from "./lib/stats.ts";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    rate: { type: "string", default: "50" },
    peak: { type: "string", default: "40" },
  },
});
const rounds = Number(values.rounds);
const peak = Number(values.peak);
const docker = new Docker();
const { lab, teardown } = benchLab(`dockside-bench-down-${process.pid}`, {
  DOCKSIDE_HTTP_PORT: "0",
  DOCKSIDE_CONSUL_PORT: "0",
  DOCKSIDE_OPS_PORT: "0",
});
const running = async (s: string) => (await lab.running(s)).map((c) => c.hostname);

/** Docker's first event of each kind (`kill`) per container of the project, by id (ms). */
async function watchKills(): Promise<{ at: Map<string, number>; stop(): void }> {
  const at = new Map<string, number>();
  const events = (await docker.getEvents({
    filters: { type: ["container"], event: ["kill"], label: [`com.docker.compose.project=${lab.project}`] },
  })) as unknown as NodeJS.ReadableStream & { destroy(): void };
  events.on("data", (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n").filter(Boolean)) {
      const e = JSON.parse(line) as { Actor: { ID: string }; timeNano: number };
      if (!at.has(e.Actor.ID)) at.set(e.Actor.ID, e.timeNano / 1e6);
    }
  });
  return { at, stop: () => events.destroy() };
}

/** When each of `addresses` (ip:port) first went missing from the edge's live upstream for web. */
function watchUpstream(
  ops: string,
  addresses: readonly string[],
): { gone: Map<string, number>; stop(): Promise<void> } {
  const gone = new Map<string, number>();
  let on = true;
  const loop = (async () => {
    while (on) {
      try {
        const status = (await (await fetch(`${ops}/status`)).json()) as {
          services: { name: string; upstream: string[] }[];
        };
        const now = Date.now();
        const live = new Set(status.services.find((s) => s.name === "web")?.upstream ?? []);
        for (const a of addresses) if (!live.has(a) && !gone.has(a)) gone.set(a, now);
      } catch {
        // the edge is busy: the next poll tells
      }
      await sleep(20);
    }
  })();
  return { gone, stop: () => ((on = false), loop) };
}

try {
  await lab.up();
  const edge = `http://${await lab.port("edge", 8080)}`;
  const ops = `http://${await lab.port("edge", 9102)}`;
  await waitForInstances(`${edge}/web/`, () => running("web"), { timeoutMs: 90_000 });
  const toDereg: number[] = [];
  const deregToGone: number[] = [];
  const killToGone: number[] = [];
  let sent = 0;
  let failed = 0;
  for (let round = 1; round <= rounds; round++) {
    const load = startLoad({
      url: `${edge}/web/`,
      rate: Number(values.rate),
      connections: 8,
      durationMs: 15 * 60_000,
    });
    const t0 = Date.now();
    await lab.scale({ web: peak });
    await waitForInstances(`${edge}/web/`, () => running("web"), { timeoutMs: 600_000 });
    const up = Date.now() - t0;
    const web = await Promise.all(
      (await lab.running("web")).map(async (c) => {
        const info = await docker.getContainer(c.id).inspect();
        const ip = Object.values(info.NetworkSettings.Networks)[0]!.IPAddress;
        return { id: info.Id, address: `${ip}:3000` };
      }),
    );
    const kills = await watchKills();
    const upstream = watchUpstream(
      ops,
      web.map((w) => w.address),
    );
    await sleep(500);
    const downAt = Date.now();
    await lab.scale({ web: 3 });
    await waitForInstances(`${edge}/web/`, () => running("web"), { timeoutMs: 120_000 });
    await sleep(1000);
    await upstream.stop();
    kills.stop();
    const result = await load.stop();
    sent += result.sent;
    failed += result.failed;
    const [registrator] = await lab.running("registrator");
    const dereg = new Map(
      (await jsonLogLines(docker, registrator!.id))
        .filter((l) => l.at >= downAt && l.msg === "deregistered service instance")
        .map((l) => [String(l.fields.containerId), l.at]),
    );
    for (const w of web) {
      const kill = kills.at.get(w.id);
      const gone = upstream.gone.get(w.address);
      const d = dereg.get(w.id.slice(0, 12));
      if (kill === undefined || gone === undefined) continue;
      killToGone.push(gone - kill);
      if (d !== undefined) {
        toDereg.push(d - kill);
        deregToGone.push(gone - d);
      }
    }
    console.log(
      `round ${round}: all ${peak} answered ${(up / 1000).toFixed(1)} s after the scale-up began; scale-down: ${kills.at.size} killed; GET load: sent ${result.sent}, failed ${result.failed}${result.failures.length ? ` (${result.failures.map((f) => `${f.what} at +${t0 + f.at - downAt} ms`).join(", ")})` : ""}`,
    );
  }
  console.log(
    `over ${rounds} rounds of web ${peak}→3 (ms, per leaving instance; /status polled every 20 ms):`,
  );
  console.log(
    formatSummary("  kill event → deregistered (the registrator's Consul call returned)", summarise(toDereg)),
  );
  console.log(formatSummary("  deregistered → out of the edge's live upstream", summarise(deregToGone)));
  console.log(formatSummary("  kill event → out of the edge's live upstream", summarise(killToGone)));
  console.log(`GET load over all rounds: sent ${sent}, failed ${failed}`);
} finally {
  await teardown();
}
