// The Swarm road of the cluster lab: the same three engines joined into a swarm (three
// managers), deploy/cluster/stack.yml deployed with `docker stack deploy`, scaled with
// `docker service scale`. The Consul side (servers, a client agent per host) is the plain
// road's; the stack adds a global registrator, the replicated demo `sweb` and an edge.

import { readFileSync } from "node:fs";
import path from "node:path";
import { repoRoot } from "../compose.ts";
import { docker } from "../../lib/docker-cli.ts";
import type { ClusterLab } from "./cluster.ts";
import { swarmRegistratorPolicy } from "./plan.ts";

export const stackName = "dockside-swarm";
export const swarmEdgePort = 8081;
export const swarmOpsPort = 9112;
const stackFile = path.join(repoRoot, "deploy", "cluster", "stack.yml");

export class SwarmRoad {
  readonly lab: ClusterLab;
  constructor(lab: ClusterLab) {
    this.lab = lab;
  }

  get manager() {
    return this.lab.plan.hosts[0]!;
  }

  /** The swarm's edge, published in host mode on the first host. */
  edgeUrl(): string {
    return `http://${this.manager.ip}:${swarmEdgePort}`;
  }

  /** The swarm edge's ops listener (status page, /status, /metrics), published on its node. */
  opsUrl(): string {
    return `http://${this.manager.ip}:${swarmOpsPort}`;
  }

  async #swarmState(host: string): Promise<string> {
    return (await this.lab.hostDocker(host, ["info", "--format", "{{.Swarm.LocalNodeState}}"])).stdout.trim();
  }

  async up(log: (m: string) => void = () => {}): Promise<void> {
    const [first, ...others] = this.lab.plan.hosts;
    if ((await this.#swarmState(first!.node)) !== "active") {
      await this.lab.hostDocker(first!.node, ["swarm", "init", "--advertise-addr", first!.ip]);
    }
    const token = (
      await this.lab.hostDocker(first!.node, ["swarm", "join-token", "-q", "manager"])
    ).stdout.trim();
    for (const h of others) {
      if ((await this.#swarmState(h.node)) === "active") continue;
      await this.lab.hostDocker(h.node, [
        "swarm",
        "join",
        "--advertise-addr",
        h.ip,
        "--token",
        token,
        `${first!.ip}:2377`,
      ]);
    }
    log(`swarm: ${this.lab.plan.hosts.length} managers`);
    await this.lab.loadImages(first!.node, [this.lab.images.edge]);
    const secret = await this.lab.grantToken(swarmRegistratorPolicy, "registrator-swarm");
    const f = await this.lab.files();
    const env = {
      DOCKSIDE_REGISTRATOR_IMAGE: this.lab.images.registrator,
      DOCKSIDE_DEMO_IMAGE: this.lab.images.demo,
      DOCKSIDE_EDGE_IMAGE: this.lab.images.edge,
      REGISTRATOR_TOKEN: secret,
      // The registrator image runs as `node`; the socket's group lets it read Docker (engines of
      // one image: the same gid on every node).
      DOCKER_GID: await this.lab.socketGroup(first!.node),
      TEMPLATER_TOKEN: f.secrets.tokens.templater!,
      CONSUL_SERVER_ADDR: `https://${this.lab.plan.servers[0]!.ip}:8501`,
      EDGE_NODE: first!.node,
      EDGE_PORT: String(swarmEdgePort),
      EDGE_OPS_PORT: String(swarmOpsPort),
    };
    await docker(["exec", "-i", first!.container, "sh", "-c", "cat > /tmp/stack.yml"], {
      input: readFileSync(stackFile, "utf8"),
    });
    await docker([
      "exec",
      ...Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]),
      first!.container,
      "docker",
      "stack",
      "deploy",
      "--resolve-image",
      "never",
      "-c",
      "/tmp/stack.yml",
      stackName,
    ]);
    log(`swarm: stack ${stackName} deployed (registrator global, sweb replicated, edge on ${first!.node})`);
  }

  /** `docker service scale`, then waits until exactly n tasks run (removed ones have exited). */
  async scale(n: number, timeoutMs = 120_000): Promise<void> {
    await this.lab.hostDocker(this.manager.node, ["service", "scale", "--detach", `${stackName}_sweb=${n}`]);
    const deadline = Date.now() + timeoutMs;
    let running = -1;
    while (Date.now() < deadline) {
      running = (await this.instances()).length;
      if (running === n) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`${stackName}_sweb: ${running} tasks running, not ${n}, after ${timeoutMs / 1000} s`);
  }

  /** Running sweb tasks' container IDs (their hostnames, which the demo reports), over all hosts. */
  async instances(): Promise<string[]> {
    const per = await Promise.all(
      this.lab.plan.hosts.map(async (h) =>
        (
          await this.lab.hostDocker(h.node, [
            "ps",
            "-q",
            "--filter",
            `label=com.docker.swarm.service.name=${stackName}_sweb`,
            "--filter",
            "status=running",
          ])
        ).stdout
          .split("\n")
          .filter(Boolean),
      ),
    );
    return per.flat();
  }

  async down(): Promise<void> {
    await this.lab.hostDocker(this.manager.node, ["stack", "rm", stackName], { reject: false });
    for (const h of this.lab.plan.hosts) {
      await this.lab.hostDocker(h.node, ["swarm", "leave", "--force"], { reject: false });
    }
  }
}
