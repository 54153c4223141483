// One record per container the registrator has heard of: what it last saw running,
// whether it drains or is gone, which instances answered their readiness probe,
// which problems were already logged, when an event last looked at it, and the facts of
// its last inspection while no event has come for it since (a readiness answer reuses them).

import { signalNumber } from "../core/events.ts";
import { defaultIdName } from "../core/plan.ts";
import type { ContainerFacts } from "../core/types.ts";

/** A running container the registrator has seen. */
export interface Known {
  name: string;
  created: string;
  startedAt: string;
  stopSignal: number | undefined;
}

interface ContainerRecord {
  known?: Known;
  /** Asked to stop: the run (StartedAt) that is draining; "" when not known. */
  draining?: string;
  /** Died or was removed, until its sync has run. */
  gone?: boolean;
  /** The run and the instances whose readiness probe answered 2xx. */
  ready?: { startedAt: string; ids: Set<string> };
  /** Problem messages already logged. */
  logged?: Set<string>;
  /** Sequence number of the last event-driven sync that started. */
  touched?: number;
  /** The last inspection's facts, while no event for the container came after it began. */
  facts?: ContainerFacts;
}

/** An inspection under way: an event for its container meanwhile makes its facts unfit to keep. */
export interface Inspection {
  id: string;
  stale: boolean;
}

export class ContainerTable {
  readonly #records = new Map<string, ContainerRecord>();
  /** Name → ID of every container seen, running or not: whose default IDs are whose. */
  #names = new Map<string, string>();
  #seq = 0;
  /** Inspections under way, by container. */
  readonly #inspecting = new Map<string, Set<Inspection>>();

  /** The names Docker listed (a full sync), plus any container seen since. */
  setNames(names: Map<string, string>): void {
    for (const [id, r] of this.#records) if (r.known) names.set(r.known.name, id);
    this.#names = names;
  }

  /** The container whose default ID (`<name>:<port>`) `serviceId` is, if Docker has it. */
  defaultOwner(serviceId: string): { id: string; name: string } | undefined {
    const name = defaultIdName(serviceId);
    const id = name === undefined ? undefined : this.#names.get(name);
    return id === undefined ? undefined : { id, name: name! };
  }

  #get(id: string): ContainerRecord {
    let r = this.#records.get(id);
    if (!r) this.#records.set(id, (r = {}));
    return r;
  }

  #tidy(id: string): void {
    const r = this.#records.get(id);
    if (r && Object.values(r).every((v) => v === undefined)) this.#records.delete(id);
  }

  known(id: string): Known | undefined {
    return this.#records.get(id)?.known;
  }

  /** Every container with a record (seen running, draining, or with problems logged). */
  ids(): string[] {
    return [...this.#records.keys()];
  }

  remember(f: ContainerFacts): void {
    this.#names.set(f.name, f.id);
    this.#get(f.id).known = {
      name: f.name,
      created: f.created,
      startedAt: f.startedAt,
      stopSignal: signalNumber(f.stopSignal),
    };
  }

  /** The container no longer runs: everything but the event bookkeeping goes. */
  forget(id: string): void {
    const r = this.#records.get(id);
    if (!r) return;
    r.known = r.draining = r.ready = r.logged = r.facts = undefined;
    this.#tidy(id);
  }

  // ---- facts kept between an inspection and a readiness answer ------------------

  /** An event came for the container: whatever an inspection saw before it may be out of date. */
  heard(id: string): void {
    for (const i of this.#inspecting.get(id) ?? []) i.stale = true;
    const r = this.#records.get(id);
    if (r?.facts) r.facts = undefined;
  }

  /** An inspection of `id` begins; pass it to `inspected` with what Docker answered. */
  inspecting(id: string): Inspection {
    const i: Inspection = { id, stale: false };
    let set = this.#inspecting.get(id);
    if (!set) this.#inspecting.set(id, (set = new Set()));
    set.add(i);
    return i;
  }

  /** The inspection ended: its facts are kept unless an event came meanwhile (or it failed). */
  inspected(i: Inspection, facts: ContainerFacts | null | undefined): void {
    const set = this.#inspecting.get(i.id);
    set?.delete(i);
    if (set?.size === 0) this.#inspecting.delete(i.id);
    const r = this.#records.get(i.id);
    if (!r?.known) return;
    r.facts = !i.stale && facts?.running && facts.startedAt === r.known.startedAt ? facts : undefined;
  }

  /**
   * The facts of run `startedAt` as last inspected, when nothing has been heard of the
   * container since and it neither drains nor is gone; otherwise undefined (ask Docker).
   */
  unchanged(id: string, startedAt: string): ContainerFacts | undefined {
    const r = this.#records.get(id);
    if (!r?.facts || r.draining !== undefined || r.gone) return undefined;
    return r.facts.startedAt === startedAt ? r.facts : undefined;
  }

  /** It (re)started: a fresh run, not draining, not gone, not yet ready. */
  started(id: string): void {
    const r = this.#get(id);
    r.draining = r.gone = r.ready = r.facts = undefined;
    this.#tidy(id);
  }

  /** Asked to stop; true the first time for this run. */
  drain(id: string): boolean {
    const r = this.#get(id);
    if (r.draining !== undefined) return false;
    r.draining = r.known?.startedAt ?? "";
    return true;
  }

  markGone(id: string): void {
    this.#get(id).gone = true;
  }

  clearGone(id: string): void {
    const r = this.#records.get(id);
    if (r) r.gone = undefined;
    this.#tidy(id);
  }

  /** Draining or gone: nothing to register, so no need to ask Docker. */
  nothingToRegister(id: string): boolean {
    const r = this.#records.get(id);
    return r?.draining !== undefined || r?.gone === true;
  }

  hasDrain(id: string): boolean {
    return this.#records.get(id)?.draining !== undefined;
  }

  /** Whether this run of the container drains; a drain of an earlier run is dropped. */
  isDraining(f: ContainerFacts): boolean {
    const r = this.#records.get(f.id);
    const run = r?.draining;
    if (run === undefined) return false;
    if (run !== "" && run !== f.startedAt) {
      r!.draining = undefined; // it has started again since
      return false;
    }
    return true;
  }

  isReady(f: ContainerFacts, instanceId: string): boolean {
    const ready = this.#records.get(f.id)?.ready;
    return ready !== undefined && ready.startedAt === f.startedAt && ready.ids.has(instanceId);
  }

  /** A readiness probe answered for this run; false when the run is not the one known. */
  markReady(containerId: string, startedAt: string, instanceId: string): boolean {
    const r = this.#records.get(containerId);
    if (r?.known?.startedAt !== startedAt) return false;
    if (!r.ready || r.ready.startedAt !== startedAt) r.ready = { startedAt, ids: new Set() };
    r.ready.ids.add(instanceId);
    return true;
  }

  /** True the first time `message` is reported for this container. */
  firstReport(id: string, message: string): boolean {
    const r = this.#get(id);
    r.logged ??= new Set();
    if (r.logged.has(message)) return false;
    r.logged.add(message);
    return true;
  }

  // ---- races between event-driven syncs and full syncs ----------------------

  /** The sequence number now: a full sync takes it before its snapshot. */
  get seq(): number {
    return this.#seq;
  }

  /** An event-driven sync of `id` starts. */
  touch(id: string): void {
    this.#get(id).touched = ++this.#seq;
  }

  /** No event-driven sync of `id` started after `seq0`. */
  fresh(id: string, seq0: number): boolean {
    return (this.#records.get(id)?.touched ?? 0) <= seq0;
  }

  /** Forgets the touches a full sync that started at `seq0` has seen past. */
  settle(seq0: number): void {
    for (const [id, r] of this.#records) {
      if (r.touched !== undefined && r.touched <= seq0) {
        r.touched = undefined;
        this.#tidy(id);
      }
    }
  }
}
