// In-memory stand-ins for the registrator's two adapters (Docker source, Consul
// registry), for unit tests of the reconciler's logic. Integration tests use the
// real adapters against real Docker and Consul.

import type { DockerEvent } from "../../services/registrator/src/core/events.ts";
import type {
  CheckStatus,
  ContainerFacts,
  LabelSelector,
  MappingOptions,
  Registration,
  ServiceInstance,
} from "../../services/registrator/src/core/types.ts";
import { matchesFilter } from "../../services/registrator/src/core/instances.ts";
import { afterRegistration } from "../../services/registrator/src/core/plan.ts";
import {
  CheckMissing,
  checkDefinition,
  type Registry,
  type RegistryState,
} from "../../services/registrator/src/consul/registry.ts";
import type { DockerSource, EventsOptions } from "../../services/registrator/src/docker/source.ts";

let counter = 0;

/** A running container on one bridge network, exposing 8080/tcp, unless overridden. */
export function facts(over: Partial<ContainerFacts> = {}): ContainerFacts {
  counter++;
  const id = over.id ?? `${String(counter).padStart(4, "0")}${"c".repeat(60)}`;
  return {
    id,
    name: `app-${counter}`,
    image: "example/app:1.0",
    created: `2026-01-01T00:00:${String(counter % 60).padStart(2, "0")}.000Z`,
    labels: {},
    env: {},
    running: true,
    paused: false,
    startedAt: "2026-01-01T00:01:00.000Z",
    networkMode: "bridge",
    networks: { bridge: `172.17.0.${(counter % 250) + 2}` },
    exposed: ["8080/tcp"],
    bindings: {},
    healthcheck: false,
    health: "none",
    stopSignal: "",
    ...over,
  };
}

export function mappingOptions(over: Partial<MappingOptions> = {}): MappingOptions {
  return {
    identity: "engine-1",
    addressMode: "internal",
    network: "",
    hostIp: "",
    explicit: false,
    extraTags: [],
    labelFilter: [],
    checkTtlMs: 3_600_000,
    ...over,
  };
}

/** A Docker engine in memory: containers, and an event stream tests push to. */
export class FakeDocker implements DockerSource {
  readonly containers = new Map<string, ContainerFacts>();
  engine = "engine-1";
  failing: Error | undefined;
  inspectCalls = 0;
  #listeners = new Set<(ev: DockerEvent | Error) => void>();

  add(f: ContainerFacts): ContainerFacts {
    this.containers.set(f.id, f);
    return f;
  }

  async engineId(): Promise<string> {
    if (this.failing) throw this.failing;
    return this.engine;
  }

  async listRunning(filter: readonly LabelSelector[]): Promise<string[]> {
    if (this.failing) throw this.failing;
    return [...this.containers.values()]
      .filter((c) => c.running && matchesFilter(c.labels, filter))
      .map((c) => c.id);
  }

  async listNames(filter: readonly LabelSelector[]): Promise<Map<string, string>> {
    if (this.failing) throw this.failing;
    return new Map(
      [...this.containers.values()].filter((c) => matchesFilter(c.labels, filter)).map((c) => [c.name, c.id]),
    );
  }

  async inspect(id: string): Promise<ContainerFacts | null> {
    this.inspectCalls++;
    if (this.failing) throw this.failing;
    const c = this.containers.get(id);
    return c ? structuredClone(c) : null;
  }

  /** Delivers an event to every open stream. */
  emit(ev: DockerEvent): void {
    for (const l of this.#listeners) l(ev);
  }

  /** Ends every open stream with an error (the engine went away). */
  breakStreams(err = new Error("connection reset")): void {
    for (const l of this.#listeners) l(err);
  }

  get streams(): number {
    return this.#listeners.size;
  }

  async *events(opts: EventsOptions): AsyncIterable<DockerEvent> {
    if (this.failing) throw this.failing;
    const queue: (DockerEvent | Error)[] = [];
    let wake: (() => void) | undefined;
    const listener = (ev: DockerEvent | Error) => {
      queue.push(ev);
      wake?.();
    };
    this.#listeners.add(listener);
    const onAbort = () => wake?.();
    opts.signal.addEventListener("abort", onAbort);
    opts.onOpen?.();
    try {
      while (!opts.signal.aborted) {
        const next = queue.shift();
        if (next instanceof Error) throw next;
        if (next) {
          yield next;
          continue;
        }
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      this.#listeners.delete(listener);
      opts.signal.removeEventListener("abort", onAbort);
    }
  }
}

/** Docker's event for a container, labels included as attributes. */
export function containerEvent(
  action: string,
  c: Pick<ContainerFacts, "id" | "labels">,
  attrs: Record<string, string> = {},
): DockerEvent {
  return { Type: "container", Action: action, Actor: { ID: c.id, Attributes: { ...c.labels, ...attrs } } };
}

interface Stored {
  registration: Registration;
  definitions: Record<string, unknown>[];
}

/** A Consul agent in memory, with the same rules the real one showed (see consul/registry.ts). */
export class FakeRegistry implements Registry {
  readonly services = new Map<string, Stored>();
  failing: Error | undefined;
  calls: string[] = [];

  /** Registers something this registrator does not own. */
  addForeign(id: string, name: string): void {
    this.services.set(id, {
      registration: { id, name, address: "10.9.9.9", port: 1, tags: [], meta: {}, checks: {} },
      definitions: [],
    });
  }

  /** The agent restarted empty. */
  wipe(): void {
    this.services.clear();
  }

  get(id: string): Registration | undefined {
    return this.services.get(id)?.registration;
  }

  definitions(id: string): Record<string, unknown>[] {
    return this.services.get(id)?.definitions ?? [];
  }

  #check(what: string): void {
    this.calls.push(what);
    if (this.failing) throw this.failing;
  }

  async list(identity: string): Promise<RegistryState> {
    this.#check("list");
    const owned: Registration[] = [];
    const foreignIds = new Set<string>();
    for (const { registration } of this.services.values()) {
      if (registration.meta.dockside_owner === identity) owned.push(structuredClone(registration));
      else foreignIds.add(registration.id);
    }
    return { owned, foreignIds };
  }

  async register(i: ServiceInstance): Promise<void> {
    this.#check(`register ${i.id}`);
    const old = this.services.get(i.id)?.registration;
    const registration = afterRegistration(i, old);
    // Like Consul 1.8: checks left out of the new definition are not removed.
    for (const [id, status] of Object.entries(old?.checks ?? {})) registration.checks[id] ??= status;
    this.services.set(i.id, {
      registration,
      definitions: i.checks.map((c) => checkDefinition(c, i)),
    });
  }

  async deregister(id: string): Promise<void> {
    this.#check(`deregister ${id}`);
    this.services.delete(id);
  }

  async setStatus(checkId: string, status: CheckStatus): Promise<void> {
    this.#check(`status ${checkId} ${status}`);
    for (const { registration } of this.services.values()) {
      if (registration.checks[checkId] !== undefined) {
        registration.checks[checkId] = status;
        return;
      }
    }
    throw new CheckMissing(`check ${checkId}: does not have associated TTL`);
  }

  async removeCheck(checkId: string): Promise<void> {
    this.#check(`remove-check ${checkId}`);
    for (const { registration } of this.services.values()) delete registration.checks[checkId];
  }
}
