// Throwaway workload containers from the tiny busybox image: an HTTP server that
// answers with its own hostname, or just a sleeping process. Created with
// dockerode directly (labels, networks, no wait strategy) because tests start many.

import type Docker from "dockerode";
import { docker, removeContainer, requireDocker, testLabel, uniqueName } from "./docker.ts";
import { images } from "./images.ts";
import type { Scope } from "./scope.ts";

export interface WorkloadOptions {
  network?: string;
  name?: string;
  labels?: Record<string, string>;
  env?: Record<string, string>;
  /** Ports to declare as exposed, e.g. ["8080/tcp"]. Defaults to 8080/tcp for the HTTP server. */
  exposed?: string[];
  /** Publish exposed ports on random host ports. */
  publish?: boolean;
  /** Replace the HTTP server with another command. */
  cmd?: string[];
  healthcheck?: Docker.HealthConfig;
  /** Seconds docker stop waits before SIGKILL. */
  stopTimeout?: number;
  start?: boolean;
}

export interface Workload {
  id: string;
  name: string;
  container: Docker.Container;
}

/** busybox httpd on 8080 answering its hostname; exits at once on SIGTERM. */
export const httpServerCmd = [
  "sh",
  "-c",
  "mkdir -p /www && hostname > /www/index.html; trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait",
];

export async function createWorkload(scope: Scope, opts: WorkloadOptions = {}): Promise<Workload> {
  await requireDocker();
  const name = opts.name ?? uniqueName("dockside-wl");
  const exposed = opts.exposed ?? (opts.cmd ? [] : ["8080/tcp"]);
  const container = await docker.createContainer({
    name,
    Hostname: name.slice(0, 63),
    Image: images().busybox,
    Cmd: opts.cmd ?? httpServerCmd,
    Labels: { [testLabel]: "1", ...opts.labels },
    Env: Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`),
    ExposedPorts: Object.fromEntries(exposed.map((p) => [p, {}])),
    Healthcheck: opts.healthcheck,
    StopTimeout: opts.stopTimeout,
    HostConfig: {
      NetworkMode: opts.network ?? "bridge",
      PublishAllPorts: opts.publish ?? false,
    },
  });
  scope.defer(`workload ${name}`, () => removeContainer(container.id));
  if (opts.start ?? true) await container.start();
  return { id: container.id, name, container };
}
