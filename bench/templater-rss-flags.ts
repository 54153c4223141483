// The templater's RSS at idle (no services, real Consul, nginx running) in the edge image as
// shipped, and in variants of it whose node gets more V8 flags (appended after the shipped ones,
// so they win) or other environment (put last before `node`, so it wins over the shipped
// MALLOC_* settings): how far each trade of speed for memory goes toward the 60 MB goal.
// Each variant is a throw-away image (FROM the edge image, edge-init.sh edited), removed at the
// end. Per round every variant starts at once, each a fresh Consul and edge on a network of its
// own; RSS is read with `docker top` (the same reading as bench/dataplane-push.ts) at each of
// --at seconds after the edge answered healthy, and at the last one the RSS is split into pages
// of files (the node binary and its libraries, shared with nothing else in the container) and
// anonymous memory (V8's heap, malloc, stacks), from /proc/<pid>/smaps_rollup on this host.
//
//   node bench/templater-rss-flags.ts [--rounds 2] [--at 4,10,40,100,160] [--only shipped,...]

import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { sleep } from "../lib/backoff.ts";
import { docker as dockerCli } from "../scripts/lib/docker-cli.ts";
import { startConsul } from "../test/helpers/consul.ts";
import { createNetwork } from "../test/helpers/docker.ts";
import { startEdge } from "../test/helpers/edge.ts";
import { images } from "../test/helpers/images.ts";
import { Scope } from "../test/helpers/scope.ts";
import { templaterProcess } from "./lib/templater-process.ts";

process.env.TESTCONTAINERS_RYUK_DISABLED ??= "true";
process.env.TESTCONTAINERS_HOST_OVERRIDE ??= "localhost";
const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "2" },
    at: { type: "string", default: "4,10,40,100,160" },
    only: { type: "string" },
  },
});
const at = values.at.split(",").map(Number);
if (at.some((s, i) => !(s > 0) || (i > 0 && s <= at[i - 1]!))) {
  throw new Error(`--at ${values.at}: seconds, rising, each > 0`);
}

interface Variant {
  /** Appended to node's flags in edge-init.sh. */
  flags?: string;
  /** `NAME=value` assignments put right before `node` (later assignments win in sh). */
  env?: string;
}

const variants: Record<string, Variant> = {
  shipped: {},
  "no Turbofan (--max-opt=1: Ignition and Sparkplug)": { flags: "--max-opt=1" },
  "interpreter only (--max-opt=0)": { flags: "--max-opt=0" },
  "--lite-mode": { flags: "--lite-mode" },
  "--jitless": { flags: "--jitless" },
  "one malloc arena (MALLOC_ARENA_MAX=1)": { env: "MALLOC_ARENA_MAX=1" },
  "malloc trims at 64 KiB (MALLOC_TRIM_THRESHOLD_=65536)": { env: "MALLOC_TRIM_THRESHOLD_=65536" },
  "one thread each (UV_THREADPOOL_SIZE=1, --v8-pool-size=1)": {
    env: "UV_THREADPOOL_SIZE=1",
    flags: "--v8-pool-size=1",
  },
  "--single-threaded": { flags: "--single-threaded" },
};
const chosen = values.only?.split(",");

interface Reading {
  rss: number[];
  fileMiB?: number;
  anonMiB?: number;
}

/** Pages of files and anonymous pages of a host process, in MiB; undefined where /proc is not this host's. */
async function split(pid: number): Promise<{ fileMiB: number; anonMiB: number } | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/smaps_rollup`, "utf8");
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text)?.[1]);
    const rss = kib("Rss");
    const anon = kib("Anonymous");
    return Number.isFinite(rss) && Number.isFinite(anon)
      ? { fileMiB: (rss - anon) / 1024, anonMiB: anon / 1024 }
      : undefined;
  } catch {
    return undefined;
  }
}

const shipped = images().edge;
const scope = new Scope();
process.once("SIGINT", () => void scope.close().then(() => process.exit(130)));
try {
  const runs = new Map<string, Variant & { image: string; readings: Reading[] }>();
  for (const [name, v] of Object.entries(variants)) {
    if (chosen && !chosen.some((c) => name.includes(c))) continue;
    let image = shipped;
    if (v.flags || v.env) {
      image = `dockside/edge-rss:${runs.size}`;
      // The node line of edge-init.sh is `  MALLOC_…=… node --… /app/main.mjs "$@" &`; the grep
      // fails the build if the edit did not take.
      const env = v.env ? `${v.env} ` : "";
      const flags = v.flags ? `${v.flags} ` : "";
      const dockerfile = [
        `FROM ${shipped}`,
        "USER root",
        `RUN sed -i 's| node \\(--.*\\) /app/main.mjs "\\$@" &| ${env}node \\1 ${flags}/app/main.mjs "\\$@" \\&|' /app/edge-init.sh && grep -q -- ' ${env}node .* ${flags}/app/main.mjs' /app/edge-init.sh`,
        "USER dockside",
      ].join("\n");
      await dockerCli(["build", "-q", "-t", image, "-"], { input: dockerfile });
      scope.defer(`image ${image}`, () => dockerCli(["rmi", "-f", image], { reject: false }).then(() => {}));
    }
    runs.set(name, { ...v, image, readings: [] });
  }
  for (let round = 0; round < Number(values.rounds); round++) {
    const run = new Scope();
    try {
      const edges = await Promise.all(
        [...runs.values()].map(async (r) => {
          const network = await createNetwork(run);
          await startConsul(run, { network, alias: "consul" });
          const edge = await startEdge(run, { network, image: r.image });
          return { r, edge, started: Date.now(), reading: { rss: [] } as Reading };
        }),
      );
      for (const e of edges) {
        const p = await templaterProcess(e.edge.container);
        if (e.r.flags && !p.args.includes(e.r.flags)) throw new Error(`flags ${e.r.flags} not in ${p.args}`);
      }
      for (const s of at) {
        for (const e of edges) {
          await sleep(Math.max(0, e.started + s * 1000 - Date.now()));
          const p = await templaterProcess(e.edge.container);
          e.reading.rss.push(p.rssMiB);
          if (s === at.at(-1)) Object.assign(e.reading, await split(p.pid));
        }
      }
      for (const e of edges) e.r.readings.push(e.reading);
    } finally {
      await run.close();
    }
  }
  const last = at.at(-1)!;
  console.log(
    `bench: templater RSS at idle, no services, each variant's edges started at once (MiB at ${at.map((s) => `${s}`).join(", ")} s after healthy; one line per start), and at ${last} s: pages of files / anonymous`,
  );
  for (const [name, { readings }] of runs) {
    for (const r of readings) {
      const parts =
        r.fileMiB === undefined ? "" : ` | files ${r.fileMiB.toFixed(1)} / anon ${r.anonMiB!.toFixed(1)}`;
      console.log(`bench:   ${name.padEnd(58)} ${r.rss.map((v) => v.toFixed(1)).join(", ")}${parts}`);
    }
  }
  console.log("bench: goal 60 MB = 57.2 MiB");
} finally {
  await scope.close();
}
