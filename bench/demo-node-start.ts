// How soon demo-node listens after its process starts: the part of every scale-up that is Node
// starting (bench/lab-scaling.ts: "start event → demo-node listening"). Each start is a fresh
// container of the demo-node image (deploy/.env) running its own command, with a probe loaded
// through NODE_OPTIONS (test/helpers/loaded-modules.ts) that reads Node's clock when the server
// listens and ends the process; --variant adds NODE_OPTIONS flags of its own to compare. Only
// the bench's own containers run; each is removed, also on failure.
//
//   node bench/demo-node-start.ts [--starts 30] [--variant --enable-source-maps]

import { parseArgs } from "node:util";
import { containerLogs, docker, removeContainer, testLabel, uniqueName } from "../test/helpers/docker.ts";
import { images } from "../test/helpers/images.ts";
import { loadedModulesProbe } from "../test/helpers/loaded-modules.ts";
import { Scope } from "../test/helpers/scope.ts";
import { formatSummary, summarise } from "./lib/stats.ts";

const { values } = parseArgs({
  options: { starts: { type: "string", default: "30" }, variant: { type: "string", multiple: true } },
});
const starts = Number(values.starts);
if (!Number.isInteger(starts) || starts < 1) throw new Error(`--starts ${values.starts}: a whole number ≥ 1`);

const scope = new Scope();
process.once("SIGINT", () => void scope.close().then(() => process.exit(130)));
try {
  const probe = loadedModulesProbe(scope, { listening: true });
  const image = images().demo;
  const variants = ["", ...(values.variant ?? [])];
  const figures = new Map(variants.map((v) => [v, { listening: [] as number[], bootstrap: [] as number[] }]));
  // Alternating starts, so a noisy moment of the machine falls on every variant alike.
  for (let i = 0; i < starts; i++) {
    for (const variant of variants) {
      const name = uniqueName("dockside-bench-demo-start");
      const c = await docker.createContainer({
        name,
        Image: image,
        Env: [`NODE_OPTIONS=${[probe.nodeOptions, variant].join(" ").trim()}`],
        Labels: { [testLabel]: "1" },
        HostConfig: { Binds: [probe.bind] },
      });
      try {
        await c.start();
        await c.wait();
        const reading = probe.read((await containerLogs(c)).stderr);
        if (!reading) throw new Error(`${name}: the probe printed nothing (variant "${variant}")`);
        const f = figures.get(variant)!;
        f.listening.push(reading.atMs);
        f.bootstrap.push(reading.bootstrapMs);
      } finally {
        await removeContainer(c.id);
      }
    }
  }
  console.log(`bench: demo-node start in ${image}, process start → …, ${starts} starts each:`);
  for (const [variant, f] of figures) {
    const label = variant ? `with NODE_OPTIONS ${variant}` : "as shipped";
    console.log(`bench: ${label}`);
    console.log(`bench:   ${formatSummary("Node's bootstrap complete", summarise(f.bootstrap))}`);
    console.log(`bench:   ${formatSummary("server listening", summarise(f.listening))}`);
  }
} finally {
  await scope.close();
}
