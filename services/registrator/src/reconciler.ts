// The reconciler: desired instances from what Docker says now, actual ones from
// what Consul holds under this registrator's identity, and the difference applied.
//
// - A full sync (at start-up, every resync period, after the event stream
//   reconnects, and after any failure, with backoff) compares everything.
// - An event syncs just its container: one inspect, one Consul call or two.
// - Work is serialised per container. A full sync's plan for a container is
//   dropped when an event-driven sync of that container started after the full
//   sync took its snapshot: the event saw fresher facts.

import { Backoff, sleep } from "../../../lib/backoff.ts";
import { Semaphore } from "../../../lib/concurrency.ts";
import { hostPort } from "../../../lib/host-port.ts";
import { describeError, type Logger } from "../../../lib/log.ts";
import { Reachability } from "../../../lib/state-change.ts";
import { classifyEvent, signalNumber, type DockerEvent } from "./core/events.ts";
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
import { CheckMissing, RegistryRejected, type Registry } from "./consul/registry.ts";
import type { DockerSource } from "./docker/source.ts";
import { KeyedQueue } from "./keyed-queue.ts";
import type { Metrics } from "./metrics.ts";
import { ReadyProber, type ProbeTarget } from "./ready-probe.ts";

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
  log: Logger;
  metrics: Metrics;
}

/** A running container the registrator has seen. */
interface Known {
  name: string;
  created: string;
  startedAt: string;
  stopSignal: number | undefined;
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
}

export class Reconciler {
  readonly #o: Required<Omit<ReconcilerOptions, "retryInitialMs" | "concurrency">> & {
    retryInitialMs: number;
    concurrency: number;
  };
  readonly #log: Logger;
  readonly #m: Metrics;
  readonly #queue: KeyedQueue;
  readonly #inspectLimit: Semaphore;
  readonly #prober: ReadyProber;
  readonly #consulReach: Reachability;
  readonly #dockerReach: Reachability;
  readonly #backoff: Backoff;
  readonly #stopped = new AbortController();

  /** What this registrator holds in Consul, as far as it knows (refreshed by every full sync). */
  readonly #registered = new Map<string, Registration>();
  #foreign = new Set<string>();
  readonly #known = new Map<string, Known>();
  /** Containers asked to stop → the run (StartedAt) that is draining; "" when not known. */
  readonly #draining = new Map<string, string>();
  /** Containers that died or were removed, until their sync has run. */
  readonly #gone = new Set<string>();
  /** Container → the run and the instances whose readiness probe answered 2xx. */
  readonly #ready = new Map<string, { startedAt: string; ids: Set<string> }>();
  /** Check ID → when its status was last sent (TTL heartbeat). */
  readonly #statusSentAt = new Map<string, number>();
  /** Container → problem messages already logged for it. */
  readonly #logged = new Map<string, Set<string>>();
  /** Container → sequence number of the last event-driven sync that started. */
  readonly #touched = new Map<string, number>();
  #seq = 0;

  #nextFullAt = 0;
  #wake: (() => void) | undefined;
  #lastFullSync: Date | null = null;
  #loops: Promise<void>[] = [];
  /** The event stream is open (or failed once): the first full sync may start. */
  readonly #eventsOpened = Promise.withResolvers<void>();
  /** Consul's state was read once: before that, an event-driven sync could not know what to remove. */
  readonly #loaded = Promise.withResolvers<void>();
  #isLoaded = false;
  readonly #firstSync = Promise.withResolvers<void>();
  #isSynced = false;

  constructor(options: ReconcilerOptions) {
    this.#o = { retryInitialMs: 250, concurrency: 16, ...options };
    this.#log = options.log;
    this.#m = options.metrics;
    this.#queue = new KeyedQueue(this.#o.concurrency);
    this.#inspectLimit = new Semaphore(this.#o.concurrency);
    this.#backoff = new Backoff({ initialMs: this.#o.retryInitialMs, maxMs: this.#o.retryMaxMs });
    this.#consulReach = new Reachability("consul", this.#log, (up) => this.#m.consulUp.set(up ? 1 : 0));
    this.#dockerReach = new Reachability("docker", this.#log, (up) => this.#m.dockerUp.set(up ? 1 : 0));
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
      synced: this.#isSynced,
      lastFullSync: this.#lastFullSync?.toISOString() ?? null,
      instances: this.#registered.size,
    };
  }

  start(): void {
    this.#loops = [this.#eventLoop(), this.#syncLoop()];
  }

  /** Stops watching and syncing. Deregisters nothing: a restart must not cause an outage. */
  async stop(): Promise<void> {
    this.#stopped.abort();
    this.#prober.stop();
    this.#wake?.();
    await Promise.race([Promise.allSettled(this.#loops), sleep(2000)]);
  }

  /** Asks for a full sync after `delayMs` (sooner if one is already due). */
  requestFullSync(delayMs = 0): void {
    this.#nextFullAt = Math.min(this.#nextFullAt, Date.now() + delayMs);
    this.#wake?.();
  }

  // ---- events ---------------------------------------------------------------

  handleEvent(ev: DockerEvent): void {
    this.#m.events.inc({ action: ev.Action.split(":")[0]!.trim() });
    const effect = classifyEvent(ev, {
      labelFilter: this.#o.mapping.labelFilter,
      stopSignalOf: (id) => this.#known.get(id)?.stopSignal,
    });
    if (effect.kind === "ignore") return;
    const id = effect.containerId;
    switch (effect.kind) {
      case "start":
        this.#draining.delete(id);
        this.#gone.delete(id);
        this.#ready.delete(id);
        this.#prober.cancel(id);
        break;
      case "drain":
        if (!this.#draining.has(id)) {
          this.#draining.set(id, this.#known.get(id)?.startedAt ?? "");
          this.#log.info("container stopping; taking its instances out of rotation", {
            container: this.#known.get(id)?.name,
            containerId: id.slice(0, 12),
            signal: effect.signal,
          });
        }
        this.#prober.cancel(id);
        break;
      case "gone":
        this.#gone.add(id);
        this.#prober.cancel(id);
        break;
    }
    this.#enqueue(id);
  }

  #enqueue(id: string): void {
    void this.#loaded.promise
      .then(() => this.#queue.run(id, () => this.#syncContainer(id), "event"))
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
      try {
        const stream = this.#o.docker.events({
          since,
          signal,
          onOpen: () => {
            since ??= (Date.now() / 1000).toFixed(3);
            this.#dockerReach.ok();
            backoff.reset();
            this.#eventsOpened.resolve();
            // Events may have been missed while disconnected: compare everything.
            if (reconnecting) this.requestFullSync();
            reconnecting = false;
          },
        });
        for await (const ev of stream) {
          if (ev.since) since = ev.since;
          this.handleEvent(ev);
        }
        if (signal.aborted) return;
        throw new Error("the Docker event stream ended");
      } catch (err) {
        if (signal.aborted) return;
        reconnecting = true;
        this.#m.errors.inc({ kind: "docker" });
        const delay = backoff.next();
        this.#dockerReach.failed(err, delay);
        this.#eventsOpened.resolve(); // let the first full sync go ahead (and fail) rather than wait
        this.#log.debug("event stream failed; reconnecting", { err: describeError(err), retryInMs: delay });
        await sleep(delay, signal);
      }
    }
  }

  // ---- full sync -----------------------------------------------------------

  async #syncLoop(): Promise<void> {
    const signal = this.#stopped.signal;
    await Promise.race([this.#eventsOpened.promise, sleep(2000, signal)]);
    while (!signal.aborted) {
      const wait = this.#nextFullAt - Date.now();
      if (wait > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, wait);
          this.#wake = done;
          function done() {
            clearTimeout(timer);
            resolve();
          }
        });
        this.#wake = undefined;
        continue;
      }
      this.#nextFullAt = Infinity;
      try {
        await this.fullSync();
        this.#backoff.reset();
        this.#nextFullAt = Math.min(this.#nextFullAt, Date.now() + this.#o.resyncMs);
      } catch (err) {
        if (signal.aborted) return;
        this.#failed(err);
      }
    }
  }

  /** Compares everything and applies the difference. Throws when a dependency failed. */
  async fullSync(): Promise<void> {
    const started = performance.now();
    const seq0 = this.#seq;
    const { identity, labelFilter } = this.#o.mapping;
    const [state, ids] = await Promise.all([
      this.#consul(() => this.#o.registry.list(identity)),
      this.#docker(() => this.#o.docker.listRunning(labelFilter)),
    ]);
    this.#foreign = state.foreignIds;
    if (!this.#isLoaded) {
      for (const r of state.owned) this.#registered.set(r.id, r);
      this.#isLoaded = true;
      this.#loaded.resolve();
    }
    const inspected = await Promise.all(
      ids.map((id) => this.#inspectLimit.with(() => this.#docker(() => this.#o.docker.inspect(id)))),
    );
    const facts = inspected.filter((f): f is ContainerFacts => f !== null && f.running);

    const fresh = (id: string) => (this.#touched.get(id) ?? 0) <= seq0;
    const live = new Set(facts.map((f) => f.id));
    for (const id of [...this.#known.keys()]) if (!live.has(id) && fresh(id)) this.#forget(id);
    const desired: ServiceInstance[] = [];
    for (const f of facts) {
      if (!fresh(f.id)) continue;
      this.#remember(f);
      const m = this.#map(f);
      this.#report(f, m.problems);
      desired.push(...m.instances);
    }
    const ownerOf = new Map(state.owned.map((r) => [r.id, r.meta[metaKeys.container]]));
    const claims = resolveClaims(desired, {
      foreignIds: this.#foreign,
      currentOwner: (id) => ownerOf.get(id),
      created: (id) => this.#known.get(id)?.created ?? "",
    });
    this.#reportRejected(claims.rejected);

    const desiredBy = groupBy(claims.kept, (i) => i.containerId);
    const actualBy = groupBy(state.owned, (r) => r.meta[metaKeys.container] ?? `orphan:${r.id}`);
    const cachedBy = groupBy([...this.#registered.values()], (r) => r.meta[metaKeys.container] ?? "");
    const keys = new Set([...desiredBy.keys(), ...actualBy.keys()]);
    const failures: unknown[] = [];
    let changes = 0;
    await Promise.all(
      [...keys].map((key) =>
        this.#queue
          .run(key, async () => {
            if (!fresh(key)) return; // an event-driven sync already handled it with fresher facts
            for (const r of cachedBy.get(key) ?? []) this.#registered.delete(r.id);
            for (const r of actualBy.get(key) ?? []) this.#registered.set(r.id, r);
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
      if (!keys.has(key) && fresh(key)) for (const r of regs) this.#registered.delete(r.id);
    }
    for (const [id, seq] of this.#touched) if (seq <= seq0) this.#touched.delete(id);
    this.#m.instances.set(this.#registered.size);
    if (failures.length) throw failures[0];

    this.#launchProbes(claims.kept);
    const ms = performance.now() - started;
    this.#m.reconcileSeconds.observe({ scope: "full" }, ms / 1000);
    this.#lastFullSync = new Date();
    const summary = {
      containers: facts.length,
      instances: this.#registered.size,
      changes,
      ms: Math.round(ms),
    };
    if (!this.#isSynced) {
      this.#isSynced = true;
      this.#log.info("initial sync complete", summary);
      this.#firstSync.resolve();
    } else this.#log[changes ? "info" : "debug"]("resync complete", summary);
  }

  // ---- one container ---------------------------------------------------------

  async #syncContainer(id: string): Promise<void> {
    const started = performance.now();
    this.#touched.set(id, ++this.#seq);
    // Draining or gone: nothing to register, so no need to ask Docker first.
    const skipInspect = this.#draining.has(id) || this.#gone.has(id);
    const facts = skipInspect ? null : await this.#docker(() => this.#o.docker.inspect(id));
    let mapping: Mapping = { instances: [], problems: [] };
    if (facts?.running) {
      this.#remember(facts);
      mapping = this.#map(facts);
      this.#report(facts, mapping.problems);
    } else if (!this.#draining.has(id)) {
      this.#forget(id);
    }
    this.#gone.delete(id);
    const claims = resolveClaims(mapping.instances, {
      foreignIds: this.#foreign,
      currentOwner: (sid) => this.#registered.get(sid)?.meta[metaKeys.container],
      heldElsewhere: (sid, cid) => {
        const owner = this.#registered.get(sid)?.meta[metaKeys.container];
        return owner && owner !== cid && this.#known.has(owner) ? owner : undefined;
      },
      created: (cid) => this.#known.get(cid)?.created ?? "",
    });
    this.#reportRejected(claims.rejected);
    const wanted = new Set(claims.kept.map((i) => i.id));
    const actual = [...this.#registered.values()].filter(
      (r) => r.meta[metaKeys.container] === id || wanted.has(r.id),
    );
    const ops = planChanges(claims.kept, actual, { refreshDue: (c) => this.#refreshDue(c) });
    await this.#apply(ops);
    this.#m.instances.set(this.#registered.size);
    this.#launchProbes(claims.kept);
    this.#m.reconcileSeconds.observe({ scope: "container" }, (performance.now() - started) / 1000);
  }

  #map(f: ContainerFacts): Mapping {
    return containerInstances(f, this.#o.mapping, {
      draining: this.#isDraining(f),
      ready: (instanceId) => {
        const r = this.#ready.get(f.id);
        return r !== undefined && r.startedAt === f.startedAt && r.ids.has(instanceId);
      },
    });
  }

  #isDraining(f: ContainerFacts): boolean {
    const run = this.#draining.get(f.id);
    if (run === undefined) return false;
    if (run !== "" && run !== f.startedAt) {
      this.#draining.delete(f.id); // it has started again since
      return false;
    }
    return true;
  }

  #remember(f: ContainerFacts): void {
    this.#known.set(f.id, {
      name: f.name,
      created: f.created,
      startedAt: f.startedAt,
      stopSignal: signalNumber(f.stopSignal),
    });
  }

  #forget(id: string): void {
    this.#known.delete(id);
    this.#draining.delete(id);
    this.#ready.delete(id);
    this.#logged.delete(id);
    this.#prober.cancel(id);
  }

  // ---- applying a plan --------------------------------------------------------

  async #apply(ops: readonly Op[]): Promise<void> {
    for (const op of ops) {
      switch (op.kind) {
        case "register":
          await this.#register(op.instance, op.previous);
          break;
        case "deregister": {
          const r = op.registration;
          await this.#consul(() => this.#o.registry.deregister(r.id));
          this.#registered.delete(r.id);
          for (const checkId of Object.keys(r.checks)) this.#statusSentAt.delete(checkId);
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
          const r = this.#registered.get(op.serviceId);
          if (r) delete r.checks[op.checkId];
          this.#statusSentAt.delete(op.checkId);
          break;
        }
        case "set-status": {
          const { instance, ttl } = op;
          try {
            await this.#consul(() => this.#o.registry.setStatus(ttl.checkId, ttl.status, ttl.note));
          } catch (err) {
            if (!(err instanceof DependencyError && err.cause instanceof CheckMissing)) throw err;
            // Consul lost the check (restarted empty): put the whole instance back.
            this.#registered.delete(instance.id);
            await this.#register(instance, undefined);
            break;
          }
          const r = this.#registered.get(instance.id);
          const changed = r?.checks[ttl.checkId] !== ttl.status;
          if (r) r.checks[ttl.checkId] = ttl.status;
          this.#statusSentAt.set(ttl.checkId, Date.now());
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
      if (c.kind === "ttl" && previous?.checks[c.id] === undefined) this.#statusSentAt.set(c.id, Date.now());
    }
    this.#registered.set(i.id, afterRegistration(i, previous));
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
    const sent = this.#statusSentAt.get(checkId);
    return sent === undefined || Date.now() - sent > this.#o.mapping.checkTtlMs / 2;
  }

  // ---- readiness ----------------------------------------------------------------

  #launchProbes(instances: readonly ServiceInstance[]): void {
    for (const i of instances) {
      if (i.readyPath === undefined) continue;
      const known = this.#known.get(i.containerId);
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
    if (this.#known.get(t.containerId)?.startedAt !== t.startedAt) return;
    this.#m.readyProbes.inc({ result: "ready" });
    let r = this.#ready.get(t.containerId);
    if (!r || r.startedAt !== t.startedAt) {
      r = { startedAt: t.startedAt, ids: new Set() };
      this.#ready.set(t.containerId, r);
    }
    r.ids.add(t.instanceId);
    this.#enqueue(t.containerId);
  }

  // ---- failures and problems --------------------------------------------------

  /** Runs a call to a dependency: success marks it reachable, failure is tagged with its name. */
  async #call<T>(dependency: "consul" | "docker", fn: () => Promise<T>): Promise<T> {
    try {
      const out = await fn();
      (dependency === "consul" ? this.#consulReach : this.#dockerReach).ok();
      return out;
    } catch (err) {
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
    const delay = this.#backoff.next();
    if (err instanceof DependencyError) {
      this.#m.errors.inc({ kind: err.dependency });
      if (err.dependency === "consul") this.#consulReach.failed(err.cause, delay);
      else this.#dockerReach.failed(err.cause, delay);
    } else {
      this.#m.errors.inc({ kind: "internal" });
      this.#log.error("reconcile failed", { err: describeError(err) });
    }
    this.#log.debug("sync failed; full resync scheduled", { err: describeError(err), retryInMs: delay });
    this.requestFullSync(delay);
  }

  /** One log line per problem per container, however often the container is looked at. */
  #report(c: { id: string; name: string }, problems: readonly Problem[]): void {
    if (problems.length === 0) return;
    let seen = this.#logged.get(c.id);
    if (!seen) this.#logged.set(c.id, (seen = new Set()));
    for (const p of problems) {
      if (seen.has(p.message)) continue;
      seen.add(p.message);
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
