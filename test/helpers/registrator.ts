// The registrator for integration tests: run in-process with its real adapters
// (dockerode, the consul client) against the test's Consul, and scoped by a label
// to the containers this test run created, so other runs sharing the engine
// neither disturb it nor get touched by it.

import { randomBytes } from "node:crypto";
import net from "node:net";
import Consul from "consul";
import Docker from "dockerode";
import { createLogger, type Fields } from "../../lib/log.ts";
import { ConsulRegistry } from "../../services/registrator/src/consul/registry.ts";
import type { MappingOptions, Registration } from "../../services/registrator/src/core/types.ts";
import { DockerodeSource, type DockerSource } from "../../services/registrator/src/docker/source.ts";
import { startRegistrator, type Registrator } from "../../services/registrator/src/registrator.ts";
import type { ConsulHandle } from "./consul.ts";
import { docker } from "./docker.ts";
import type { Scope } from "./scope.ts";
import { waitFor } from "./wait.ts";
import { createWorkload, type Workload, type WorkloadOptions } from "./workload.ts";

export const runLabel = "dockside.test.run";

/** A label value unique to this test file's run. */
export function newRun(): string {
  return randomBytes(6).toString("hex");
}

export interface TestRegistrator extends Registrator {
  logs: Fields[];
}

export interface TestRegistratorOptions {
  consul: Pick<ConsulHandle, "host" | "port">;
  /** ACL token sent with every Consul request. */
  token?: string;
  /** The Docker engine as the registrator reaches it (default: the test engine's socket). */
  docker?: DockerSource;
  run: string;
  identity?: string;
  resyncMs?: number;
  retryMaxMs?: number;
  mapping?: Partial<Omit<MappingOptions, "identity" | "labelFilter">>;
  ready?: Partial<{ intervalMs: number; timeoutMs: number; concurrency: number }>;
  /** Talk to Docker through this socket (a test/helpers/docker-proxy.ts) instead of the engine's own. */
  dockerSocket?: string;
  /** Collect the log lines here (readable before the registrator has started). */
  logs?: Fields[];
}

export async function startTestRegistrator(
  scope: Scope,
  o: TestRegistratorOptions,
): Promise<TestRegistrator> {
  const logs: Fields[] = o.logs ?? [];
  const log = createLogger({
    service: "registrator",
    level: "debug",
    write: (line) => {
      logs.push(JSON.parse(line) as Fields);
      if (process.env.DOCKSIDE_TEST_LOGS) process.stderr.write(line + "\n");
    },
  });
  const consul = new Consul({
    host: o.consul.host,
    port: o.consul.port,
    ...(o.token ? { defaults: { token: o.token } } : {}),
  });
  const r = await startRegistrator({
    docker:
      o.docker ?? new DockerodeSource(o.dockerSocket ? new Docker({ socketPath: o.dockerSocket }) : docker),
    registry: new ConsulRegistry(consul, { requestTimeoutMs: 2000 }),
    log,
    identity: o.identity ?? `test-${o.run}`,
    mapping: {
      addressMode: "internal",
      network: "",
      hostIp: "",
      explicit: false,
      extraTags: [],
      checkTtlMs: 3_600_000,
      ...o.mapping,
      labelFilter: [{ key: runLabel, value: o.run }],
    },
    resyncMs: o.resyncMs ?? 2000,
    retryMaxMs: o.retryMaxMs ?? 1000,
    ready: { intervalMs: 25, timeoutMs: 10_000, concurrency: 8, ...o.ready },
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await r.stop();
    consul.destroy();
  };
  scope.defer("registrator", stop);
  return { ...r, stop, logs };
}

/** A workload on `network` labelled for `run`, so the registrator of that run sees it. */
export function runWorkload(
  scope: Scope,
  run: string,
  network: string,
  o: WorkloadOptions = {},
): Promise<Workload> {
  return createWorkload(scope, { network, ...o, labels: { [runLabel]: run, ...o.labels } });
}

/** A port that was free a moment ago (for services that must keep their port across restarts). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** An instance as a client sees it; `checks` leaves out the node's serfHealth. */
export interface SeenInstance extends Registration {
  passing: boolean;
}

interface HealthEntry {
  Service: {
    ID: string;
    Service: string;
    Address: string;
    Port: number;
    Tags: string[] | null;
    Meta: Record<string, string> | null;
  };
  Checks: { CheckID: string; Status: string; ServiceID: string }[];
}

/** Every instance of `name` in Consul's catalog, as a client (the templater) sees it. */
export async function catalogInstances(consul: Consul, name: string): Promise<SeenInstance[]> {
  const entries = (await consul.health.service({ service: name })) as HealthEntry[];
  return entries
    .map((e) => {
      const checks = Object.fromEntries(
        e.Checks.filter((c) => c.ServiceID).map((c) => [c.CheckID, c.Status]),
      );
      return {
        id: e.Service.ID,
        name: e.Service.Service,
        address: e.Service.Address,
        port: e.Service.Port,
        tags: e.Service.Tags ?? [],
        meta: e.Service.Meta ?? {},
        checks,
        passing: e.Checks.every((c) => c.Status === "passing"),
      };
    })
    .sort((a, b) => a.id.localeCompare(b.id));
}

/** IDs of the agent's services carrying `identity`, sorted. */
export async function ownedIds(consul: Consul, identity: string): Promise<string[]> {
  const services = (await consul.agent.service.list()) as Record<
    string,
    { ID: string; Meta: Record<string, string> | null }
  >;
  return Object.values(services)
    .filter((s) => s.Meta?.dockside_owner === identity)
    .map((s) => s.ID)
    .sort();
}

/** Full syncs the registrator has completed (its reconcile-duration histogram, scope "full"). */
export async function completedFullSyncs(r: Pick<Registrator, "metrics">): Promise<number> {
  const { values } = await r.metrics.reconcileSeconds.get();
  const count = values.find(
    (v) => v.metricName === "registrator_reconcile_duration_seconds_count" && v.labels.scope === "full",
  );
  return count?.value ?? 0;
}

/**
 * Resolves once a full sync that started after this call has completed: the positive
 * signal an absence check waits for ("a resync later, still nothing changed").
 */
export async function awaitFreshFullSync(r: Pick<Registrator, "metrics">, timeoutMs = 20_000): Promise<void> {
  const from = await completedFullSyncs(r);
  // The next completion may belong to a sync already under way; the one after that started later.
  await waitFor(async () => (await completedFullSyncs(r)) >= from + 2, {
    what: "a full sync that started after the check began",
    timeoutMs,
    intervalMs: 100,
  });
}
