// The reconciler: desired instances from what Docker says now, actual ones from
// what Consul holds under this registrator's identity, and the difference applied.
//
// - A full sync (at start-up, every resync period, after the event stream
//   reconnects, and after any failure, with backoff) compares everything.
// - An event syncs just its container: one inspect, one Consul call or two.
// - Work is serialised per container. A full sync's plan for a container is
//   dropped when an event-driven sync of that container started after the full
//   sync took its snapshot: the event saw fresher facts.
//
// State lives in state/: containers.ts (one record per container), ledger.ts (what this
// registrator holds in Consul), scheduler.ts (when the next full sync runs) and
// permissions.ts (where Consul refuses it). The watches that only set off a full sync are
// docker/stall-watch.ts and consul/loss-watch.ts. This class wires events and syncs to them.

import { tlsHint } from "../../../lib/consul-answer.ts";
import { Backoff, sleep } from "../../../lib/backoff.ts";
import { Semaphore } from "../../../lib/concurrency.ts";
import { hostPort } from "../../../lib/host-port.ts";
import { describeError, type Logger } from "../../../lib/log.ts";
import { Reachability } from "../../../lib/state-change.ts";
import { classifyEvent, type DockerEvent } from "./core/events.ts";
import { containerInstances, type Mapping } from "./core/instances.ts";
import { afterRegistration, planChanges, resolveClaims, type Op, type Rejected } from "./core/plan.ts";
import {
  metaKeys,
  type ContainerFacts,
  type MappingOptions,
  type Problem,
  type Registration,
  type ServiceInstance,
} from "./core/types.ts";
import { deniedIn } from "./consul/answer.ts";
import { watchRegistryLoss } from "./consul/loss-watch.ts";
import { CheckMissing, RegistryRejected, type Registry } from "./consul/registry.ts";
import type { DockerSource } from "./docker/source.ts";
import { watchForStall } from "./docker/stall-watch.ts";
import { KeyedQueue } from "./keyed-queue.ts";
import type { Metrics } from "./metrics.ts";
import { ReadyProber, type ProbeTarget } from "./ready-probe.ts";
import { ContainerTable } from "./state/containers.ts";
import { Ledger } from "./state/ledger.ts";
import { anyService, Permissions } from "./state/permissions.ts";
import { SyncScheduler } from "./state/scheduler.ts";

export interface ReconcilerOptions {
  docker: DockerSource;
  registry: Registry;
  mapping: MappingOptions;
  resyncMs: number;
  /** Cap of the retry backoff after failures (Consul or Docker unreachable). */
  retryMaxMs: number;
  retryInitialMs?: number;
  /** Containers reconciled at once. */
  concurrency?: number;
  ready: { intervalMs: number; timeoutMs: number; concurrency: number };
  /**
   * The watch on this node's services that finds a registry loss (a Consul agent
   * restarted empty): how long one blocking read waits, and the most it waits
   * between attempts while the agent does not answer.
   */
  lossWatch?: { waitMs: number; retryMaxMs: number };
  /**
   * How often the event stream is checked against a closed window of events; 0 turns
   * the check off. Events younger than `lagMs` are not expected on the stream yet.
   */
  eventsCheck?: { intervalMs: number; lagMs: number };
  log: Logger;
  metrics: Metrics;
}

/** An error from a dependency, tagged so the right reachability is updated. */
class DependencyError extends Error {
  readonly dependency: "consul" | "docker";
  constructor(dependency: "consul" | "docker", cause: unknown) {
    super(`${dependency}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.dependency = dependency;
  }
}

export interface HealthState {
  consul: boolean;
  docker: boolean;
  synced: boolean;
  lastFullSync: string | null;
  instances: number;
  /** Service name ("*": reading the agent's services) → what Consul said when it refused. */
  denied: Record<string, string>;
}

export class Reconciler {
  /** The options with every default filled in. */
  readonly #o: Required<ReconcilerOptions>;
  readonly #log: Logger;
  readonly #m: Metrics;
  readonly #queue: KeyedQueue;
  readonly #inspectLimit: Semaphore;
  readonly #prober: ReadyProber;
  readonly #consulReach: Reachability;
  readonly #dockerReach: Reachability;
  readonly #stopped = new AbortController();
  readonly #containers = new ContainerTable();
  readonly #ledger = new Ledger();
  readonly #scheduler: SyncScheduler;
  readonly #permissions: Permissions;

  /** When the last full sync succeeded; null until the first one (synced = not null). */
  #lastFullSync: Date | null = null;
  #loops: Promise<void>[] = [];
  /** The event stream is open (or failed once): the first full sync may start. */
  readonly #eventsOpened = Promise.withResolvers<void>();
  /** Consul's state was read once: before that, an event-driven sync could not know what to remove. */
  readonly #loaded = Promise.withResolvers<void>();
  #isLoaded = false;
  readonly #firstSync = Promise.withResolvers<void>();

  constructor(options: ReconcilerOptions) {
    this.#o = {
      retryInitialMs: 250,
      concurrency: 16,
      ...options,
      lossWatch: { waitMs: 60_000, retryMaxMs: 1000, ...options.lossWatch },
      eventsCheck: { intervalMs: 1000, lagMs: 1000, ...options.eventsCheck },
    };
    this.#log = options.log;
    this.#m = options.metrics;
    this.#queue = new KeyedQueue(this.#o.concurrency);
    this.#inspectLimit = new Semaphore(this.#o.concurrency);
    this.#scheduler = new SyncScheduler({
      periodMs: this.#o.resyncMs,
      retryInitialMs: this.#o.retryInitialMs,
      retryMaxMs: this.#o.retryMaxMs,
    });
    this.#consulReach = new Reachability(
      "consul",
      this.#log,
      (up) => this.#m.consulUp.set(up ? 1 : 0),
      tlsHint,
    );
    this.#dockerReach = new Reachability("docker", this.#log, (up) => this.#m.dockerUp.set(up ? 1 : 0));
    this.#permissions = new Permissions(this.#log, (n) => this.#m.deniedServices.set(n));
    this.#prober = new ReadyProber({
      ...options.ready,
      log: this.#log,
      onReady: (t) => this.#onReady(t),
      onGiveUp: () => this.#m.readyProbes.inc({ result: "gave_up" }),
    });
  }

  /** Resolves after the first successful full sync. */
  get synced(): Promise<void> {
    return this.#firstSync.promise;
  }

  get identity(): string {
    return this.#o.mapping.identity;
  }

  health(): HealthState {
    return {
      consul: this.#consulReach.up,
      docker: this.#dockerReach.up,
      synced: this.#lastFullSync !== null,
      lastFullSync: this.#lastFullSync?.toISOString() ?? null,
      instances: this.#ledger.size,
      denied: this.#permissions.snapshot(),
    };
  }

  start(): void {
    this.#loops = [this.#eventLoop(), this.#syncLoop(), this.#lossLoop()];
  }

  /** Stops watching and syncing. Deregisters nothing: a restart must not cause an outage. */
  async stop(): Promise<void> {
    this.#stopped.abort();
    this.#prober.stop();
    this.#scheduler.wake();
    await Promise.race([Promise.allSettled(this.#loops), sleep(2000)]);
  }

  /** Asks for a full sync after `delayMs` (sooner if one is already due). */
  requestFullSync(delayMs = 0): void {
    this.#scheduler.request(delayMs);
  }

  // ---- events ---------------------------------------------------------------

  handleEvent(ev: DockerEvent): void {
    this.#m.events.inc({ action: ev.Action.split(":")[0]!.trim() });
    const effect = classifyEvent(ev, {
      labelFilter: this.#o.mapping.labelFilter,
      stopSignalOf: (id) => this.#containers.known(id)?.stopSignal,
    });
    if (effect.kind === "ignore") return;
    const id = effect.containerId;
    this.#containers.heard(id);
    switch (effect.kind) {
      case "start":
        this.#containers.started(id);
        this.#prober.cancel(id);
        break;
      case "drain":
        // Logged only for containers this registrator has seen: under a network scope, every
        // container's kill passes the event filter.
        if (this.#containers.drain(id) && this.#containers.known(id)) {
          this.#log.info("container stopping; taking its instances out of rotation", {
            container: this.#containers.known(id)?.name,
            containerId: id.slice(0, 12),
            signal: effect.signal,
          });
        }
        this.#prober.cancel(id);
        break;
      case "gone":
        this.#containers.markGone(id);
        this.#prober.cancel(id);
        break;
    }
    this.#enqueue(id);
  }

  /**
   * Queues a sync of one container. `readyRun`: the sync is for a readiness answer of that run,
   * and may reuse the facts of the last inspection when no event came since (one Docker round
   * trip less between the 2xx and the check passing in Consul). Either kind stands in for the
   * other while it waits: an event clears the kept facts (ContainerTable.heard), so a waiting
   * readiness sync that an event joined inspects after all.
   */
  #enqueue(id: string, readyRun?: string): void {
    const task = () => this.#syncContainer(id, readyRun);
    void this.#loaded.promise
      .then(() => this.#queue.run(id, task, "event"))
      .catch((err: unknown) => this.#failed(err));
  }

  async #eventLoop(): Promise<void> {
    const signal = this.#stopped.signal;
    const backoff = new Backoff({ initialMs: this.#o.retryInitialMs, maxMs: this.#o.retryMaxMs });
    // The first connection takes events from now on (the first full sync covers the past);
    // a reconnection resumes after the last event seen, or from when the first one opened.
    let since: string | undefined;
    let reconnecting = false;
    while (!signal.aborted) {
      const connection = new AbortController();
      const connSignal = AbortSignal.any([signal, connection.signal]);
      let watchdog: Promise<void> | undefined;
      try {
        const stream = this.#o.docker.events({
          since,
          signal: connSignal,
          onOpen: () => {
            since ??= (Date.now() / 1000).toFixed(3);
            this.#dockerReach.ok();
            backoff.reset();
            this.#eventsOpened.resolve();
            // Events may have been missed while disconnected: compare everything.
            if (reconnecting) this.requestFullSync();
            reconnecting = false;
            watchdog ??= this.#watchStream(connection, connSignal, () => since!);
          },
        });
        for await (const ev of stream) {
          if (ev.since) since = ev.since;
          this.handleEvent(ev);
        }
        if (signal.aborted) return;
        if (connection.signal.aborted) throw connection.signal.reason;
        throw new Error("the Docker event stream ended");
      } catch (err) {
        if (signal.aborted) return;
        reconnecting = true;
        // Stalled while Docker answers: not an outage; reconnect at once.
        if (connection.signal.aborted) continue;
        this.#m.errors.inc({ kind: "docker" });
        const delay = backoff.next();
        this.#dockerReach.failed(err, delay);
        this.#eventsOpened.resolve(); // let the first full sync go ahead (and fail) rather than wait
        this.#log.debug("event stream failed; reconnecting", { err: describeError(err), retryInMs: delay });
        await sleep(delay, signal);
      } finally {
        connection.abort();
        await watchdog;
      }
    }
  }

  /** While the stream is open, its watchdog (docker/stall-watch.ts); a stall drops the connection. */
  #watchStream(connection: AbortController, signal: AbortSignal, lastSince: () => string): Promise<void> {
    const eventsBetween = this.#o.docker.eventsBetween?.bind(this.#o.docker);
    const { intervalMs, lagMs } = this.#o.eventsCheck;
    if (!eventsBetween || intervalMs <= 0) return Promise.resolve();
    return watchForStall({
      eventsBetween,
      intervalMs,
      lagMs,
      lastSince,
      onStall: (missed) => {
        this.#m.errors.inc({ kind: "docker_stall" });
        this.#log.warn("Docker event stream stalled; reconnecting", {
          undelivered: missed.length,
          firstAction: missed[0]!.Action,
        });
        connection.abort(new Error("the Docker event stream stalled (events found that it did not deliver)"));
      },
      log: this.#log,
      signal,
    });
  }

  // ---- scheduling ----------------------------------------------------------

  async #syncLoop(): Promise<void> {
    const signal = this.#stopped.signal;
    await Promise.race([this.#eventsOpened.promise, sleep(2000, signal)]);
    await this.#scheduler.run(
      signal,
      () => this.fullSync(),
      (err) => this.#failed(err),
    );
  }

  // ---- registry loss -----------------------------------------------------------

  /**
   * Follows this node's services in the catalog (consul/loss-watch.ts): a Consul restarted
   * empty is restored by a full sync at once, without waiting for the resync period.
   */
  async #lossLoop(): Promise<void> {
    const nodeServices = this.#o.registry.nodeServices?.bind(this.#o.registry);
    if (!nodeServices) return;
    const signal = this.#stopped.signal;
    await Promise.race([this.#loaded.promise, sleep(2000, signal)]);
    await watchRegistryLoss({
      nodeServices,
      ...this.#o.lossWatch,
      deniedRetryMs: this.#o.resyncMs,
      heldSince: (t) => this.#ledger.heldSince(t),
      onLoss: (reason) => {
        this.#m.restores.inc();
        this.#log.info("checking Consul's registrations now", { reason });
        this.#scheduler.request(0);
      },
      log: this.#log,
      signal,
    });
  }

  // ---- full sync -----------------------------------------------------------

  /** Compares everything and applies the difference. Throws when a dependency failed. */
  async fullSync(): Promise<void> {
    const started = performance.now();
    const seq0 = this.#containers.seq;
    const { identity, labelFilter, scopeNetwork } = this.#o.mapping;
    const [state, ids, names] = await Promise.all([
      this.#consul(() => this.#o.registry.list(identity)),
      this.#docker(() => this.#o.docker.listRunning(labelFilter, scopeNetwork)),
      this.#docker(() => this.#o.docker.listNames(labelFilter)),
    ]);
    this.#containers.setNames(names);
    this.#ledger.foreign = state.foreignIds;
    if (!this.#isLoaded) {
      for (const r of state.owned) this.#ledger.hold(r);
      this.#isLoaded = true;
      this.#loaded.resolve();
    }
    const inspected = await Promise.all(
      ids.map((id) => this.#inspectLimit.with(() => this.#docker(() => this.#o.docker.inspect(id)))),
    );
    const facts = inspected.filter((f): f is ContainerFacts => f !== null && f.running);

    const fresh = (id: string) => this.#containers.fresh(id, seq0);
    const live = new Set(facts.map((f) => f.id));
    for (const id of this.#containers.ids()) if (!live.has(id) && fresh(id)) this.#forget(id);
    const desired: ServiceInstance[] = [];
    for (const f of facts) {
      if (!fresh(f.id)) continue;
      this.#containers.remember(f);
      const m = this.#map(f);
      this.#report(f, m.problems);
      desired.push(...m.instances);
    }
    const ownerOf = new Map(state.owned.map((r) => [r.id, r.meta[metaKeys.container]]));
    const claims = resolveClaims(desired, {
      foreignIds: this.#ledger.foreign,
      currentOwner: (id) => ownerOf.get(id),
      created: (id) => this.#containers.known(id)?.created ?? "",
      defaultOwner: (id) => this.#containers.defaultOwner(id),
    });
    this.#reportRejected(claims.rejected);

    const desiredBy = groupBy(claims.kept, (i) => i.containerId);
    const actualBy = groupBy(state.owned, (r) => r.meta[metaKeys.container] ?? `orphan:${r.id}`);
    const cachedBy = groupBy(this.#ledger.all(), (r) => r.meta[metaKeys.container] ?? "");
    const keys = new Set([...desiredBy.keys(), ...actualBy.keys()]);
    const failures: unknown[] = [];
    let changes = 0;
    await Promise.all(
      [...keys].map((key) =>
        this.#queue
          .run(key, async () => {
            if (!fresh(key)) return; // an event-driven sync already handled it with fresher facts
            this.#ledger.replace(cachedBy.get(key) ?? [], actualBy.get(key) ?? []);
            const ops = planChanges(desiredBy.get(key) ?? [], actualBy.get(key) ?? [], {
              refreshDue: (checkId) => this.#refreshDue(checkId),
            });
            changes += ops.length;
            await this.#apply(ops);
          })
          .catch((err: unknown) => failures.push(err)),
      ),
    );
    // What is cached for containers nobody mentions any more is not in Consul either.
    for (const [key, regs] of cachedBy) {
      if (!keys.has(key) && fresh(key)) for (const r of regs) this.#ledger.drop(r.id);
    }
    this.#containers.settle(seq0);
    this.#m.instances.set(this.#ledger.size);
    if (failures.length) throw failures[0];

    this.#permissions.allowed(anyService);
    this.#launchProbes(claims.kept);
    const ms = performance.now() - started;
    this.#m.reconcileSeconds.observe({ scope: "full" }, ms / 1000);
    const summary = {
      containers: facts.length,
      instances: this.#ledger.size,
      changes,
      ms: Math.round(ms),
    };
    const first = this.#lastFullSync === null;
    this.#lastFullSync = new Date();
    if (first) {
      this.#log.info("initial sync complete", summary);
      this.#firstSync.resolve();
    } else this.#log[changes ? "info" : "debug"]("resync complete", summary);
  }

  // ---- one container ---------------------------------------------------------

  async #syncContainer(id: string, readyRun?: string): Promise<void> {
    const started = performance.now();
    this.#containers.touch(id);
    const containers = this.#containers;
    let facts: ContainerFacts | null =
      readyRun === undefined ? null : (containers.unchanged(id, readyRun) ?? null);
    let inspection: ReturnType<ContainerTable["inspecting"]> | undefined;
    if (!facts && !containers.nothingToRegister(id)) {
      inspection = containers.inspecting(id);
      try {
        facts = await this.#docker(() => this.#o.docker.inspect(id));
      } catch (err) {
        containers.inspected(inspection, undefined);
        throw err;
      }
    }
    let mapping: Mapping = { instances: [], problems: [] };
    if (facts?.running && this.#inScope(facts)) {
      containers.remember(facts);
      if (inspection) containers.inspected(inspection, facts);
      mapping = this.#map(facts);
      this.#report(facts, mapping.problems);
    } else {
      if (inspection) containers.inspected(inspection, undefined);
      if (!containers.hasDrain(id)) this.#forget(id);
    }
    containers.clearGone(id);
    const ledger = this.#ledger;
    const claims = resolveClaims(mapping.instances, {
      foreignIds: ledger.foreign,
      currentOwner: (sid) => ledger.ownerOf(sid),
      heldElsewhere: (sid, cid) => {
        const owner = ledger.ownerOf(sid);
        return owner && owner !== cid && containers.known(owner) ? owner : undefined;
      },
      created: (cid) => containers.known(cid)?.created ?? "",
      defaultOwner: (sid) => containers.defaultOwner(sid),
    });
    this.#reportRejected(claims.rejected);
    const actual = ledger.relevantTo(id, new Set(claims.kept.map((i) => i.id)));
    const ops = planChanges(claims.kept, actual, { refreshDue: (c) => this.#refreshDue(c) });
    // Probing starts before the Consul calls, not after them: a start is probed a Consul round
    // trip sooner. A 2xx that comes first marks the instance ready, and the sync it queues (after
    // this one) writes the check's status.
    this.#launchProbes(claims.kept);
    await this.#apply(ops);
    this.#m.instances.set(ledger.size);
    this.#m.reconcileSeconds.observe({ scope: "container" }, (performance.now() - started) / 1000);
  }

  /** Attached to the scope network, when there is one (events come for every container). */
  #inScope(f: ContainerFacts): boolean {
    const net = this.#o.mapping.scopeNetwork;
    return !net || Object.hasOwn(f.networks, net);
  }

  #map(f: ContainerFacts): Mapping {
    return containerInstances(f, this.#o.mapping, {
      draining: this.#containers.isDraining(f),
      ready: (instanceId) => this.#containers.isReady(f, instanceId),
    });
  }

  #forget(id: string): void {
    this.#containers.forget(id);
    this.#prober.cancel(id);
  }

  // ---- applying a plan --------------------------------------------------------

  /**
   * Applies a plan. A refusal (401/403) of one operation is noted for its service and
   * the rest goes on: a registrator denied on one service keeps working for the others.
   */
  async #apply(ops: readonly Op[]): Promise<void> {
    for (const op of ops) {
      const service = this.#serviceOf(op);
      try {
        await this.#applyOne(op);
        this.#permissions.allowed(service);
      } catch (err) {
        const denied = deniedIn(err);
        if (!denied) throw err;
        this.#m.errors.inc({ kind: "denied" });
        this.#permissions.denied(service, denied.message);
      }
    }
  }

  #serviceOf(op: Op): string {
    switch (op.kind) {
      case "register":
      case "set-status":
        return op.instance.name;
      case "deregister":
        return op.registration.name;
      case "remove-check":
        return this.#ledger.get(op.serviceId)?.name ?? op.serviceId;
    }
  }

  async #applyOne(op: Op): Promise<void> {
    switch (op.kind) {
      case "register":
        await this.#register(op.instance, op.previous);
        break;
      case "deregister": {
        const r = op.registration;
        // The registry-loss watch must not take our own deregistration for a loss.
        this.#ledger.leaving(r.id, true);
        try {
          await this.#consul(() => this.#o.registry.deregister(r.id));
        } catch (err) {
          this.#ledger.leaving(r.id, false);
          throw err;
        }
        this.#ledger.drop(r.id, true);
        this.#m.deregistrations.inc();
        this.#log.info("deregistered service instance", {
          serviceName: r.name,
          id: r.id,
          containerId: r.meta[metaKeys.container]?.slice(0, 12),
        });
        break;
      }
      case "remove-check": {
        await this.#consul(() => this.#o.registry.removeCheck(op.checkId));
        this.#ledger.dropCheck(op.serviceId, op.checkId);
        break;
      }
      case "set-status": {
        const { instance, ttl } = op;
        try {
          await this.#consul(() => this.#o.registry.setStatus(ttl.checkId, ttl.status, ttl.note));
        } catch (err) {
          if (!(err instanceof DependencyError && err.cause instanceof CheckMissing)) throw err;
          // Consul lost the check (restarted empty): put the whole instance back.
          this.#ledger.drop(instance.id);
          await this.#register(instance, undefined);
          break;
        }
        const changed = this.#ledger.setCheck(instance.id, ttl.checkId, ttl.status);
        this.#ledger.statusSent(ttl.checkId);
        this.#m.statusUpdates.inc({ status: ttl.status });
        this.#log[changed ? "info" : "debug"]("check status", {
          serviceName: instance.name,
          id: instance.id,
          status: ttl.status,
          note: ttl.note,
        });
        break;
      }
    }
  }

  async #register(i: ServiceInstance, previous: Registration | undefined): Promise<void> {
    try {
      await this.#consul(() => this.#o.registry.register(i));
    } catch (err) {
      if (err instanceof DependencyError && err.cause instanceof RegistryRejected) {
        this.#report({ id: i.containerId, name: i.containerName }, [
          { effect: "skipped", message: `Consul refused instance "${i.id}": ${err.cause.message}` },
        ]);
        return;
      }
      throw err;
    }
    for (const c of i.checks) {
      if (c.kind === "ttl" && previous?.checks[c.id] === undefined) this.#ledger.statusSent(c.id);
    }
    this.#ledger.hold(afterRegistration(i, previous));
    this.#m.registrations.inc();
    this.#log.info(previous ? "updated service instance" : "registered service instance", {
      serviceName: i.name,
      id: i.id,
      address: i.address,
      port: i.port,
      tags: i.tags,
      container: i.containerName,
      ...(i.ttl ? { status: i.ttl.status } : {}),
    });
  }

  #refreshDue(checkId: string): boolean {
    return this.#ledger.refreshDue(checkId, this.#o.mapping.checkTtlMs);
  }

  // ---- readiness ----------------------------------------------------------------

  #launchProbes(instances: readonly ServiceInstance[]): void {
    for (const i of instances) {
      if (i.readyPath === undefined) continue;
      const known = this.#containers.known(i.containerId);
      if (!known) continue;
      this.#prober.ensure({
        containerId: i.containerId,
        containerName: i.containerName,
        instanceId: i.id,
        startedAt: known.startedAt,
        url: `http://${hostPort(i.address, i.port)}${i.readyPath}`,
      });
    }
  }

  #onReady(t: ProbeTarget): void {
    if (!this.#containers.markReady(t.containerId, t.startedAt, t.instanceId)) return;
    this.#m.readyProbes.inc({ result: "ready" });
    this.#enqueue(t.containerId, t.startedAt);
  }

  // ---- failures and problems --------------------------------------------------

  /** Runs a call to a dependency: success marks it reachable, failure is tagged with its name. */
  async #call<T>(dependency: "consul" | "docker", fn: () => Promise<T>): Promise<T> {
    try {
      const out = await fn();
      (dependency === "consul" ? this.#consulReach : this.#dockerReach).ok();
      return out;
    } catch (err) {
      // A refusal is an answer: Consul is reachable, this registrator may not do that.
      if (dependency === "consul" && deniedIn(err)) this.#consulReach.ok();
      throw new DependencyError(dependency, err);
    }
  }

  #consul<T>(fn: () => Promise<T>): Promise<T> {
    return this.#call("consul", fn);
  }

  #docker<T>(fn: () => Promise<T>): Promise<T> {
    return this.#call("docker", fn);
  }

  /** A sync failed: note which dependency, and retry everything after a backoff delay. */
  #failed(err: unknown): void {
    if (this.#stopped.signal.aborted) return;
    const delay = this.#scheduler.failed();
    const denied = deniedIn(err);
    if (denied) {
      this.#m.errors.inc({ kind: "denied" });
      this.#permissions.denied(anyService, `${denied.message} (${denied.request})`);
    } else if (err instanceof DependencyError) {
      this.#m.errors.inc({ kind: err.dependency });
      if (err.dependency === "consul") this.#consulReach.failed(err.cause, delay);
      else this.#dockerReach.failed(err.cause, delay);
    } else {
      this.#m.errors.inc({ kind: "internal" });
      this.#log.error("reconcile failed", { err: describeError(err) });
    }
    this.#log.debug("sync failed; full resync scheduled", { err: describeError(err), retryInMs: delay });
  }

  /** One log line per problem per container, however often the container is looked at. */
  #report(c: { id: string; name: string }, problems: readonly Problem[]): void {
    for (const p of problems) {
      if (!this.#containers.firstReport(c.id, p.message)) continue;
      this.#m.inputProblems.inc();
      this.#log.warn(p.effect === "skipped" ? "container instance skipped" : "container setting ignored", {
        container: c.name,
        containerId: c.id.slice(0, 12),
        reason: p.message,
      });
    }
  }

  #reportRejected(rejected: readonly Rejected[]): void {
    for (const r of rejected) {
      this.#report({ id: r.instance.containerId, name: r.instance.containerName }, [
        { effect: "skipped", message: r.reason },
      ]);
    }
  }
}

function groupBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}
