// The lab command: npm run lab [up | down | status | scale svc=N ... | urls]
// and the several-hosts lab: npm run lab -- cluster [up | down | status | scale svc=N ... | urls]
// (scripts/lab.sh installs what is missing and builds images first.)

import { clusterCommand } from "./lab/cluster/cli.ts";
import { Lab } from "./lab/compose.ts";
import { parseScale } from "./lab/scale-args.ts";
import { readLabState } from "./lab/state.ts";
import { formatStatus, joinStatus } from "./lab/status.ts";
import { waitForInstances } from "./lab/wait.ts";

const lab = new Lab({ verbose: true });
const routedServices = ["web", "api"];

async function urls() {
  const edge = await lab.port("edge", 8080);
  const consul = await lab.port("consul", 8500);
  const ops = await lab.port("edge", 9102);
  return {
    ops: `http://${ops.replace("127.0.0.1", "localhost")}`,
    edge: `http://${edge.replace("127.0.0.1", "localhost")}`,
    consul: `http://${consul.replace("127.0.0.1", "localhost")}`,
  };
}

async function printUrls() {
  const u = await urls();
  console.log(`
The lab is up.
  web, by path:      ${u.edge}/web/
  api, by path:      ${u.edge}/api/
  web, by host:      curl -H 'Host: web.localhost' ${u.edge}/
  status page:       ${u.ops}/   (the edge's ops listener, on 127.0.0.1 only)
  Consul UI:         ${u.consul}/ui/
Scale:   npm run lab scale web=6       (or: docker compose -f deploy/compose.yml up -d --scale web=6)
Check:   npm run lab status
Stop:    npm run lab down
`);
}

async function waitRouted(services: string[]) {
  const u = await urls();
  for (const service of services) {
    const started = Date.now();
    const check = await waitForInstances(`${u.edge}/${service}/`, async () =>
      (await lab.running(service)).map((c) => c.hostname),
    );
    console.log(
      `lab: ${service} answers from all ${check.seen.size} instance(s) (${Date.now() - started} ms)`,
    );
  }
}

const [command = "up", ...rest] = process.argv.slice(2);
try {
  switch (command) {
    case "up":
      await lab.up();
      await waitRouted(routedServices);
      await printUrls();
      break;
    case "down":
      await lab.down();
      break;
    case "scale": {
      const scale = parseScale(rest);
      await lab.scale(scale);
      await waitRouted(Object.keys(scale).filter((s) => (scale[s] ?? 0) > 0));
      break;
    }
    case "status": {
      const u = await urls();
      const state = await readLabState(lab, u.consul, u.ops);
      const services = joinStatus(state.docker, state.consul, state.nginx);
      console.log(formatStatus(services));
      process.exitCode = services.every((s) => s.ok) ? 0 : 1;
      break;
    }
    case "urls":
      await printUrls();
      break;
    case "cluster":
      process.exitCode = await clusterCommand(rest);
      break;
    default:
      console.error(`unknown command "${command}"; use up, down, status, scale svc=N, urls, cluster …`);
      process.exitCode = 2;
  }
} catch (err) {
  console.error(`lab ${command}: ${(err as Error).message}`);
  process.exitCode = 1;
}
