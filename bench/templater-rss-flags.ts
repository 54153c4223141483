// The templater's RSS at start (no services, real Consul, nginx running) in the edge image as
// shipped, and in variants of it whose node gets more V8 flags (appended after the shipped
// ones, so they win): how far each trade of speed for memory goes toward the 60 MB goal.
// Each variant is a throw-away image (FROM the edge image, edge-init.sh edited), removed at the
// end; each start is a fresh Consul and edge on a network of their own, measured after --settle
// seconds with `docker top` (the same reading as bench/dataplane-push.ts).
//
//   node bench/templater-rss-flags.ts [--rounds 2] [--settle 4]

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
  options: { rounds: { type: "string", default: "2" }, settle: { type: "string", default: "4" } },
});

/** Flags appended to the shipped ones (services/templater/edge-init.sh). */
const variants: Record<string, string> = {
  shipped: "",
  "no Turbofan (--max-opt=1: Ignition and Sparkplug)": "--max-opt=1",
  "interpreter only (--max-opt=0)": "--max-opt=0",
  "--lite-mode": "--lite-mode",
  "--jitless": "--jitless",
};

const shipped = images().edge;
const scope = new Scope();
process.once("SIGINT", () => void scope.close().then(() => process.exit(130)));
try {
  /** Each variant's image (the shipped one for no flags) and what it printed. */
  const runs = new Map<string, { flags: string; image: string; rss: number[] }>();
  for (const [name, flags] of Object.entries(variants)) {
    let image = shipped;
    if (flags) {
      image = `dockside/edge-rss:${runs.size}`;
      // The node line of edge-init.sh ends in `/app/main.mjs "$@" &`; the grep fails the build if
      // the edit did not take.
      const dockerfile = [
        `FROM ${shipped}`,
        "USER root",
        `RUN sed -i 's|/app/main.mjs "\\$@" &|${flags} /app/main.mjs "\\$@" \\&|' /app/edge-init.sh && grep -q -- '${flags} /app/main.mjs' /app/edge-init.sh`,
        "USER dockside",
      ].join("\n");
      await dockerCli(["build", "-q", "-t", image, "-"], { input: dockerfile });
      scope.defer(`image ${image}`, () => dockerCli(["rmi", "-f", image], { reject: false }).then(() => {}));
    }
    runs.set(name, { flags, image, rss: [] });
  }
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const [name, r] of runs) {
      const run = new Scope();
      try {
        const network = await createNetwork(run);
        await startConsul(run, { network, alias: "consul" });
        const edge = await startEdge(run, { network, image: r.image });
        await sleep(Number(values.settle) * 1000);
        const p = await templaterProcess(edge.container);
        if (r.flags && !p.args.includes(r.flags)) throw new Error(`${name}: flags not in ${p.args}`);
        r.rss.push(p.rssMiB);
      } finally {
        await run.close();
      }
    }
  }
  console.log(`bench: templater RSS at start, no services, after ${values.settle} s (MiB, one per start):`);
  for (const [name, { rss }] of runs) {
    console.log(`bench:   ${name.padEnd(52)} ${rss.map((v) => v.toFixed(1)).join(", ")}`);
  }
  console.log("bench: goal 60 MB = 57.2 MiB");
} finally {
  await scope.close();
}
