// `npm run lab -- cluster [up | down | scale svc=N ... | status | urls]`: the cluster lab command.

import { parseScale } from "../scale-args.ts";
import { waitForInstances } from "../wait.ts";
import { ClusterLab } from "./cluster.ts";
import { clusterStatus, formatClusterStatus } from "./status.ts";
import { SwarmRoad } from "./swarm.ts";

/** `cluster swarm up | scale N | down`: the Swarm road on the cluster lab's engines. */
async function swarmCommand(lab: ClusterLab, args: string[]): Promise<number> {
  const swarm = new SwarmRoad(lab);
  const [command = "up", n] = args;
  const log = (m: string) => console.log(`cluster: ${m}`);
  const waitRouted = async () => {
    const check = await waitForInstances(`${swarm.edgeUrl()}/sweb/`, () => swarm.instances(), {
      timeoutMs: 120_000,
    });
    log(`sweb answers from all ${check.seen.size} task(s) through ${swarm.edgeUrl()}/sweb/`);
  };
  switch (command) {
    case "up":
      await swarm.up(log);
      await waitRouted();
      return 0;
    case "scale":
      if (!/^\d+$/.test(n ?? "")) throw new Error("say how many, e.g. npm run lab -- cluster swarm scale 9");
      await swarm.scale(Number(n));
      await waitRouted();
      return 0;
    case "down":
      await swarm.down();
      return 0;
    default:
      console.error(`unknown swarm command "${command}"; use up, scale N, down`);
      return 2;
  }
}

export async function clusterCommand(args: string[]): Promise<number> {
  const [command = "up", ...rest] = args;
  const lab = new ClusterLab({ verbose: true });
  switch (command) {
    case "up":
      await lab.up();
      await lab.waitRouted();
      await printUrls(lab);
      return 0;
    case "down":
      await lab.down();
      return 0;
    case "scale": {
      const scale = parseScale(rest);
      for (const [service, n] of Object.entries(scale)) await lab.scale(service, n);
      await lab.waitRouted(Object.keys(scale).filter((s) => (scale[s] ?? 0) > 0));
      return 0;
    }
    case "status": {
      const status = await clusterStatus(lab);
      console.log(formatClusterStatus(status));
      return status.ok ? 0 : 1;
    }
    case "urls":
      await printUrls(lab);
      return 0;
    case "swarm":
      return swarmCommand(lab, rest);
    default:
      console.error(
        `unknown cluster command "${command}"; use up, down, status, scale svc=N, urls, swarm up|scale N|down`,
      );
      return 2;
  }
}

async function printUrls(lab: ClusterLab) {
  const edge = await lab.publishedEdgeUrl();
  const s = lab.plan.servers[0]!;
  console.log(`
The cluster lab is up: ${lab.plan.servers.length} Consul servers, ${lab.plan.hosts.length} Docker hosts, one edge.
  web, by path:      ${edge}/web/
  web, by host:      curl -H 'Host: web.localhost' ${edge}/
  status page:       ${lab.opsUrl()}/ (the edge's ops listener, on the cluster network)
  Consul UI:         https://${s.ip}:8501/ui/ (CA and management token in .cache/cluster/${lab.plan.prefix}/)
Scale:   npm run lab -- cluster scale web=9
Check:   npm run lab -- cluster status
Stop:    npm run lab -- cluster down
`);
}
