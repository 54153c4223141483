// The lab (deploy/compose.yml) as an end-to-end test runs it: a compose project of its own, every
// published port a free one (never the lab's 8080/8500/9102, which a developer's lab may hold).

import { Lab } from "../../scripts/lab/compose.ts";
import { waitForInstances, type RouteCheck } from "../../scripts/lab/wait.ts";
import { uniqueName } from "./docker.ts";

/** A lab under a unique project name `prefix-…`, on free host ports; `env` adds or overrides variables. */
export function testLab(prefix: string, env: Record<string, string> = {}): Lab {
  return new Lab({
    project: uniqueName(prefix),
    env: { DOCKSIDE_HTTP_PORT: "0", DOCKSIDE_CONSUL_PORT: "0", DOCKSIDE_OPS_PORT: "0", ...env },
  });
}

/** The hostnames of a lab service's running containers: what its instances answer with. */
export async function runningHostnames(lab: Lab, service: string): Promise<string[]> {
  return (await lab.running(service)).map((c) => c.hostname);
}

/** Waits until the edge at `edge` (http://host:port) answers /service/ from every running instance. */
export function routedAll(lab: Lab, edge: string, service: string, timeoutMs: number): Promise<RouteCheck> {
  return waitForInstances(`${edge}/${service}/`, () => runningHostnames(lab, service), { timeoutMs });
}
