// Wires a Docker source and a registry to the reconciler. Used by main.ts and, with
// the same real adapters, by the integration tests and benchmarks (in-process).

import { Backoff, sleep } from "../../../lib/backoff.ts";
import type { Logger } from "../../../lib/log.ts";
import { Reachability } from "../../../lib/state-change.ts";
import type { MappingOptions } from "./core/types.ts";
import type { Registry } from "./consul/registry.ts";
import type { DockerSource } from "./docker/source.ts";
import { createMetrics, type Metrics } from "./metrics.ts";
import { Reconciler, type HealthState } from "./reconciler.ts";
import { parseIdentity } from "./settings.ts";

export interface RegistratorOptions {
  docker: DockerSource;
  registry: Registry;
  log: Logger;
  /** Defaults to the Docker engine ID. */
  identity?: string;
  mapping: Omit<MappingOptions, "identity">;
  resyncMs: number;
  retryMaxMs: number;
  ready: { intervalMs: number; timeoutMs: number; concurrency: number };
  /** How often the event stream is checked for a stall, ms; 0: never. Default 1 s. */
  eventsCheckMs?: number;
  metrics?: Metrics;
  /** Aborting it gives up waiting for Docker at start-up. */
  signal?: AbortSignal;
}

export interface Registrator {
  identity: string;
  reconciler: Reconciler;
  metrics: Metrics;
  /** Resolves after the first full sync. */
  synced: Promise<void>;
  health(): HealthState;
  /** Stops without deregistering anything. */
  stop(): Promise<void>;
}

/** The engine ID, retried (with backoff, logged once) until Docker answers. */
async function engineIdentity(o: RegistratorOptions): Promise<string> {
  const reach = new Reachability("docker", o.log);
  const backoff = new Backoff({ initialMs: 250, maxMs: o.retryMaxMs });
  for (;;) {
    try {
      const id = parseIdentity(await o.docker.engineId());
      if (backoff.failures > 0) reach.ok(); // the reconciler reports reachability from here on
      return id;
    } catch (err) {
      if (o.signal?.aborted) throw err;
      const delay = backoff.next();
      reach.failed(err, delay);
      await sleep(delay, o.signal);
    }
  }
}

export async function startRegistrator(o: RegistratorOptions): Promise<Registrator> {
  const metrics = o.metrics ?? createMetrics({ defaultMetrics: false });
  const identity = o.identity || (await engineIdentity(o));
  const reconciler = new Reconciler({
    docker: o.docker,
    registry: o.registry,
    mapping: { ...o.mapping, identity },
    resyncMs: o.resyncMs,
    retryMaxMs: o.retryMaxMs,
    ready: o.ready,
    ...(o.eventsCheckMs !== undefined ? { eventsCheck: { intervalMs: o.eventsCheckMs, lagMs: 1000 } } : {}),
    log: o.log,
    metrics,
  });
  o.log.info("registrator started", {
    identity,
    addressMode: o.mapping.addressMode,
    network: o.mapping.network || "(per container)",
    resyncMs: o.resyncMs,
    labelFilter: o.mapping.labelFilter,
    scopeNetwork: o.mapping.scopeNetwork || "(any)",
  });
  reconciler.start();
  return {
    identity,
    reconciler,
    metrics,
    synced: reconciler.synced,
    health: () => reconciler.health(),
    stop: () => reconciler.stop(),
  };
}
