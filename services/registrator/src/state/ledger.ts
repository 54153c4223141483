// What this registrator holds in Consul, as far as it knows: its registrations
// (refreshed by every full sync), the IDs others hold, and when each TTL status
// was last sent.

import { metaKeys, type Registration } from "../core/types.ts";

/** A registration held, and since when (ms; kept across updates). */
interface Held {
  registration: Registration;
  since: number;
  /** Its deregistration is under way: Consul may show it gone before our call returns. */
  leaving?: boolean;
}

export class Ledger {
  readonly #held = new Map<string, Held>();
  /** Check ID → when its status was last sent (TTL heartbeat). */
  readonly #sentAt = new Map<string, number>();
  /** IDs of registrations on the agent that are not this registrator's. */
  foreign: ReadonlySet<string> = new Set();

  get size(): number {
    return this.#held.size;
  }

  get(serviceId: string): Registration | undefined {
    return this.#held.get(serviceId)?.registration;
  }

  all(): Registration[] {
    return [...this.#held.values()].map((h) => h.registration);
  }

  /** IDs held since before `t` (ms): younger ones may not have reached the catalog yet. */
  heldSince(t: number): string[] {
    return [...this.#held].filter(([, h]) => h.since < t && !h.leaving).map(([id]) => id);
  }

  /** Marks a deregistration under way (true) or failed (false): a leaving ID is not missed. */
  leaving(serviceId: string, on: boolean): void {
    const h = this.#held.get(serviceId);
    if (h) h.leaving = on || undefined;
  }

  /** The container a held registration belongs to. */
  ownerOf(serviceId: string): string | undefined {
    return this.get(serviceId)?.meta[metaKeys.container];
  }

  /** Held registrations that belong to `containerId` or carry one of `ids`. */
  relevantTo(containerId: string, ids: ReadonlySet<string>): Registration[] {
    return this.all().filter((r) => r.meta[metaKeys.container] === containerId || ids.has(r.id));
  }

  hold(r: Registration): void {
    this.#held.set(r.id, { registration: r, since: this.#held.get(r.id)?.since ?? Date.now() });
  }

  /** Not in Consul (any more); `withChecks` also forgets when its statuses were sent. */
  drop(serviceId: string, withChecks = false): void {
    const r = this.get(serviceId);
    this.#held.delete(serviceId);
    if (withChecks && r) for (const checkId of Object.keys(r.checks)) this.#sentAt.delete(checkId);
  }

  /** What a full sync read from Consul for one container replaces what was believed. */
  replace(believed: readonly Registration[], read: readonly Registration[]): void {
    const kept = new Set(read.map((r) => r.id));
    for (const r of believed) if (!kept.has(r.id)) this.drop(r.id);
    for (const r of read) this.hold(r);
  }

  setCheck(serviceId: string, checkId: string, status: string): boolean {
    const r = this.get(serviceId);
    const changed = r?.checks[checkId] !== status;
    if (r) r.checks[checkId] = status;
    return changed;
  }

  dropCheck(serviceId: string, checkId: string): void {
    const r = this.get(serviceId);
    if (r) delete r.checks[checkId];
    this.#sentAt.delete(checkId);
  }

  statusSent(checkId: string): void {
    this.#sentAt.set(checkId, Date.now());
  }

  /** The status of `checkId` should be re-sent: never sent, or half its TTL ago. */
  refreshDue(checkId: string, ttlMs: number): boolean {
    const sent = this.#sentAt.get(checkId);
    return sent === undefined || Date.now() - sent > ttlMs / 2;
  }
}
