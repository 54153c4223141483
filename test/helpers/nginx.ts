// A real nginx (the project's nginx base image) in a container, serving a config
// directory from the host.

import { GenericContainer, Wait, type StartedTestContainer } from "testcontainers";
import { removeContainer, requireDocker, testLabel, type TestNetwork } from "./docker.ts";
import { images } from "./images.ts";
import type { Scope } from "./scope.ts";

export interface NginxHandle {
  container: StartedTestContainer;
  url: string;
  exec(cmd: string[]): Promise<{ exitCode: number; output: string }>;
  reload(): Promise<void>;
}

export interface NginxOptions {
  /** Host directory mounted at /etc/dockside/nginx; must hold nginx.conf. */
  confDir: string;
  /** Port nginx listens on inside the container. */
  listenPort?: number;
  network?: TestNetwork;
}

export async function startNginx(scope: Scope, opts: NginxOptions): Promise<NginxHandle> {
  await requireDocker();
  const port = opts.listenPort ?? 8080;
  let builder = new GenericContainer(images().nginx)
    .withCommand(["nginx", "-c", "/etc/dockside/nginx/nginx.conf", "-g", "daemon off;"])
    .withBindMounts([{ source: opts.confDir, target: "/etc/dockside/nginx", mode: "ro" }])
    .withExposedPorts(port)
    .withLabels({ [testLabel]: "1" })
    .withWaitStrategy(Wait.forListeningPorts())
    .withStartupTimeout(20_000);
  if (opts.network) builder = builder.withNetworkMode(opts.network.name);
  const container = await builder.start();
  scope.defer("nginx container", () => removeContainer(container.getId()));
  const exec = async (cmd: string[]) => {
    const r = await container.exec(cmd);
    return { exitCode: r.exitCode, output: r.output };
  };
  return {
    container,
    url: `http://${container.getHost()}:${container.getMappedPort(port)}`,
    exec,
    reload: async () => {
      const r = await exec(["nginx", "-c", "/etc/dockside/nginx/nginx.conf", "-s", "reload"]);
      if (r.exitCode !== 0) throw new Error(`nginx reload failed: ${r.output}`);
    },
  };
}
