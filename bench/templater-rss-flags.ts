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
const tags = new Map<string, string>();
try {
  for (const [name, flags] of Object.entries(variants)) {
    if (!flags) {
      tags.set(name, shipped);
      continue;
    }
    const tag = `dockside/edge-rss:${tags.size}`;
    // The node line of edge-init.sh ends in `/app/main.mjs "$@" &`; the grep fails the build if
    // the edit did not take.
    const dockerfile = [
      `FROM ${shipped}`,
      "USER root",
      `RUN sed -i 's|/app/main.mjs "\\$@" &|${flags} /app/main.mjs "\\$@" \\&|' /app/edge-init.sh && grep -q -- '${flags} /app/main.mjs' /app/edge-init.sh`,
      "USER dockside",
    ].join("\n");
    await dockerCli(["build", "-q", "-t", tag, "-"], { input: dockerfile });
    scope.defer(`image ${tag}`, () => dockerCli(["rmi", "-f", tag], { reject: false }).then(() => {}));
    tags.set(name, tag);
  }
  const figures = new Map<string, number[]>();
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const [name, tag] of tags) {
      const run = new Scope();
      try {
        images().edge = tag;
        const network = await createNetwork(run);
        await startConsul(run, { network, alias: "consul" });
        const edge = await startEdge(run, { network });
        await sleep(Number(values.settle) * 1000);
        const top = (await edge.container.top({ ps_args: "-o pid,rss,args" })) as { Processes: string[][] };
        const row = top.Processes.find(
          (p) => (p[2] ?? "").includes("/app/main.mjs") && !(p[2] ?? "").includes("edge-init"),
        );
        if (!row) throw new Error(`${name}: no templater process in the edge`);
        if (flags(name) && !(row[2] ?? "").includes(flags(name)))
          throw new Error(`${name}: flags not in ${row[2]}`);
        figures.set(name, [...(figures.get(name) ?? []), Number(row[1]) / 1024]);
      } finally {
        images().edge = shipped;
        await run.close();
      }
    }
  }
  console.log(`bench: templater RSS at start, no services, after ${values.settle} s (MiB, one per start):`);
  for (const [name, rss] of figures) {
    console.log(`bench:   ${name.padEnd(52)} ${rss.map((r) => r.toFixed(1)).join(", ")}`);
  }
  console.log("bench: goal 60 MB = 57.2 MiB");
} finally {
  await scope.close();
}

function flags(name: string): string {
  return variants[name] ?? "";
}
