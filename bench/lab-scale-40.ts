// web scaled 3→40→3, --rounds times (default 2), under a steady keep-alive load on /web/ and
// /api/, on the lab's own compose project (free ports, removed at the end, also on Ctrl-C):
// failed requests per path, time until all 40 are registered and passing in Consul, time
// until all 40 answer through the edge, and how often a running instance went critical.
//
//   node bench/lab-scale-40.ts [--rounds 2] [--rate 50] [--peak 40]

import { parseArgs } from "node:util";
import { waitForInstances } from "../scripts/lab/wait.ts";
import { startLoad } from "../test/helpers/load.ts";
import { waitFor } from "../test/helpers/wait.ts";
import { benchLab } from "./lib/lab.ts";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "2" },
    rate: { type: "string", default: "50" },
    peak: { type: "string", default: "40" },
  },
});
const rounds = Number(values.rounds);
const rate = Number(values.rate);
const peak = Number(values.peak);
const { lab, teardown } = benchLab(`dockside-bench-s40-${process.pid}`, {
  DOCKSIDE_HTTP_PORT: "0",
  DOCKSIDE_CONSUL_PORT: "0",
});

const running = async (s: string) => (await lab.running(s)).map((c) => c.hostname);

async function passing(consul: string, service: string): Promise<number> {
  const res = await fetch(`${consul}/v1/health/service/${service}?passing=1`);
  return ((await res.json()) as unknown[]).length;
}

/** Ms until `cond` holds (polled every 200 ms), or undefined when it does not within `timeoutMs`. */
async function until(cond: () => Promise<boolean>, timeoutMs: number): Promise<number | undefined> {
  const started = Date.now();
  return waitFor(cond, { what: "a condition", timeoutMs, intervalMs: 200 }).then(
    () => Date.now() - started,
    () => undefined,
  );
}

/** Service name → "check status … critical" lines the registrator logged (a running instance out). */
async function criticalLines(): Promise<Record<string, number>> {
  const r = await lab.compose(["logs", "--no-log-prefix", "registrator"], { stdio: "pipe" });
  const out: Record<string, number> = {};
  for (const l of String(r.stdout).split("\n")) {
    if (!l.includes('"msg":"check status"') || !l.includes('"status":"critical"')) continue;
    const name = /"serviceName":"([^"]+)"/.exec(l)?.[1] ?? "?";
    out[name] = (out[name] ?? 0) + 1;
  }
  return out;
}

try {
  console.log(`bench: bringing up project ${lab.project}`);
  await lab.up();
  const edge = `http://${await lab.port("edge", 8080)}`;
  const consul = `http://${await lab.port("consul", 8500)}`;
  await waitForInstances(`${edge}/web/`, () => running("web"));
  await waitForInstances(`${edge}/api/`, () => running("api"));
  const web = startLoad({ url: `${edge}/web/`, rate, durationMs: 30 * 60_000 });
  const api = startLoad({ url: `${edge}/api/`, rate, durationMs: 30 * 60_000 });
  const rows: string[] = [];
  for (let r = 1; r <= rounds; r++) {
    const t0 = Date.now();
    await lab.scale({ web: peak });
    const scaled = Date.now() - t0;
    const inConsul = await until(async () => (await passing(consul, "web")) >= peak, 300_000);
    const registered = inConsul === undefined ? undefined : Date.now() - t0;
    const routedAt = await waitForInstances(`${edge}/web/`, () => running("web"), { timeoutMs: 300_000 })
      .then(() => Date.now() - t0)
      .catch(() => undefined);
    const t1 = Date.now();
    await lab.scale({ web: 3 });
    const down = await until(async () => (await passing(consul, "web")) === 3, 120_000);
    rows.push(
      `  round ${r}: compose scale 3→${peak} took ${(scaled / 1000).toFixed(1)} s; all ${peak} passing in Consul ` +
        `${registered === undefined ? "NOT within 300 s" : `${(registered / 1000).toFixed(1)} s`} after the scale began; ` +
        `all routed ${routedAt === undefined ? "NOT within 300 s" : `${(routedAt / 1000).toFixed(1)} s`}; ` +
        `back to 3 in Consul ${down === undefined ? "NOT within 120 s" : `${((Date.now() - t1) / 1000).toFixed(1)} s`}`,
    );
    console.log(rows.at(-1));
  }
  const [w, a] = await Promise.all([web.stop(), api.stop()]);
  const critical = await criticalLines();
  const line = (name: string, x: typeof w) =>
    `  ${name}: ${x.sent} sent, ${x.failed} failed, statuses ${JSON.stringify(x.statuses)}` +
    (x.failures.length
      ? `; first failures: ${x.failures
          .slice(0, 3)
          .map((f) => f.what)
          .join(" | ")}`
      : "");
  console.log(`lab-scale-40 results (rate ${rate}/s per path, keep-alive):`);
  for (const r of rows) console.log(r);
  console.log(line("/web/", w));
  console.log(line("/api/", a));
  console.log(
    `  "check status … critical" lines from the registrator, by service: ${JSON.stringify(critical)}`,
  );
} finally {
  await teardown();
}
