// A real Consul agent (dev mode) in a container, started with Testcontainers.

import Consul from "consul";
import { GenericContainer, Wait, type StartedTestContainer } from "testcontainers";
import { removeContainer, requireDocker, testLabel, type TestNetwork } from "./docker.ts";
import { images } from "./images.ts";
import type { Scope } from "./scope.ts";

export interface ConsulHandle {
  container: StartedTestContainer;
  /** http://host:port as seen from the host. */
  url: string;
  host: string;
  port: number;
  /** Address on the test network (alias:8500), when started on one. */
  internalAddr?: string;
  client: Consul;
}

/** A dev-mode agent answering on every interface, logging warnings only. */
export const devAgentArgs = ["agent", "-dev", "-client", "0.0.0.0", "-log-level", "warn"] as const;

export async function startConsul(
  scope: Scope,
  opts: {
    network?: TestNetwork;
    alias?: string;
    /** A fixed host port (default: a random one), so the agent keeps its address across `docker restart`. */
    hostPort?: number;
    /** Consul's limits.http_max_conns_per_client (its default: 200). */
    maxConnsPerClient?: number;
  } = {},
): Promise<ConsulHandle> {
  await requireDocker();
  let builder = new GenericContainer(images().consul)
    .withCommand([
      ...devAgentArgs,
      ...(opts.maxConnsPerClient
        ? ["-hcl", `limits { http_max_conns_per_client = ${opts.maxConnsPerClient} }`]
        : []),
    ])
    .withExposedPorts(opts.hostPort ? { container: 8500, host: opts.hostPort } : 8500)
    .withLabels({ [testLabel]: "1" })
    .withWaitStrategy(
      Wait.forHttp("/v1/status/leader", 8500).forResponsePredicate((body) => /"\S+:\d+"/.test(body)),
    )
    .withStartupTimeout(30_000);
  const alias = opts.alias ?? "consul";
  if (opts.network) builder = builder.withNetworkMode(opts.network.name).withNetworkAliases(alias);
  const container = await builder.start();
  scope.defer("consul container", () => removeContainer(container.getId()));
  const host = container.getHost();
  const port = container.getMappedPort(8500);
  const client = new Consul({ host, port });
  return {
    container,
    url: `http://${host}:${port}`,
    host,
    port,
    internalAddr: opts.network ? `${alias}:8500` : undefined,
    client,
  };
}

/** An instance as a test registers it by hand, standing in for the registrator. */
export interface TestInstance {
  id: string;
  name: string;
  address: string;
  /** Default 8080. */
  port?: number;
  /** Default ["http"]. */
  tags?: string[];
  meta?: Record<string, string>;
  /** The TTL check's status; default "passing". */
  status?: string;
}

/** Registers `i` on the agent with a 600 s TTL check, so it stays in its status for the test. */
export function registerInstance(client: Consul, i: TestInstance) {
  return client.agent.service.register({
    id: i.id,
    name: i.name,
    address: i.address,
    port: i.port ?? 8080,
    tags: i.tags ?? ["http"],
    meta: i.meta,
    check: { ttl: "600s", status: i.status ?? "passing" } as never,
  });
}
