// What to route when the catalog says less than it should. Pure: the previous routed view and
// the new one in, the view to route and what was held out (as data) back.
//
// Two guards, each keeping instances that were routed a moment ago:
// - Consul restarted is not Consul emptied. After Consul's index went backwards (a restarted or
//   replaced Consul), instances routed before and now absent from the catalog stay routed for
//   `graceMs` (e.g. one registrator resync) or until they are all back, instead of applying
//   emptiness. Instances present in the catalog are judged by their checks as usual. Emptiness
//   with the index moving forward is confirmed (deregistrations move it); emptiness that only
//   ACL filtering produces never gets here (the watcher reports it as "denied").
// - Panic mode (Envoy's panic threshold at 0 %): when every instance of a routed service fails
//   its checks while still registered, its instances on nodes that are alive stay routed;
//   nginx's passive checks and retries then sort out which of them answer. Off with panic false.

import { summarise, type InstanceView, type ServiceView, type View } from "./view.ts";

export type HoldReason = "consul-restarted" | "panic";

export interface Held {
  service: string;
  reason: HoldReason;
  /** node/id of the instances routed although the catalog alone would not route them. */
  instances: string[];
}

export interface HoldInput {
  /** What was routed last time (the output of the previous call); undefined at start. */
  previous: View | undefined;
  /** What the catalog alone routes now. */
  routed: View;
  /** Every instance of every status, as Consul has them now. */
  catalog: View;
  /** Nodes whose serfHealth fails: their instances are never held. */
  nodesDown: ReadonlySet<string>;
  now: number;
  /** Start of the current restart grace period (index reset or sudden emptiness); undefined: none. */
  suspectSince: number | undefined;
  graceMs: number;
  panic: boolean;
}

export interface HoldResult {
  view: View;
  held: Held[];
  /** Start of the grace period now in force (carried to the next call); undefined: none. */
  suspectSince: number | undefined;
  /** When the grace period ends (the caller looks again then); undefined: none. */
  graceEndsAt: number | undefined;
}

const key = (i: InstanceView) => `${i.node}/${i.id}`;
const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Service-level tags and meta from the instances it routes (as buildView does). */
function withInstances(s: ServiceView, instances: InstanceView[]): ServiceView {
  const sorted = [...instances].sort((a, b) => byText(a.id, b.id) || byText(a.node, b.node));
  return { ...s, ...summarise(sorted), instances: sorted };
}

export function holdRouted(input: HoldInput): HoldResult {
  const { previous, routed, catalog, nodesDown, now, graceMs, panic } = input;
  let suspectSince = input.suspectSince;
  // Grace over: what the catalog says now is the truth.
  if (suspectSince !== undefined && now - suspectSince >= graceMs) suspectSince = undefined;

  // Nothing to hold (no grace period, no routed service without instances): the view as it is,
  // without building maps of a thousand services on every change.
  if (suspectSince === undefined && (!panic || routed.services.every((s) => s.instances.length > 0))) {
    return { view: routed, held: [], suspectSince, graceEndsAt: undefined };
  }
  // Built per service only where a rule needs it: most services hold nothing.
  const inCatalog = new Map(catalog.services.map((s) => [s.name, s]));
  const presentOf = (name: string) => new Map((inCatalog.get(name)?.instances ?? []).map((i) => [key(i), i]));
  const before = new Map((previous?.services ?? []).map((s) => [s.name, s]));
  const held: Held[] = [];
  const services = new Map(routed.services.map((s) => [s.name, s]));

  for (const [name, prev] of before) {
    if (prev.instances.length === 0) continue;
    const current = services.get(name) ?? { name, tags: [], meta: {}, instances: [] };
    const panicking = panic && current.instances.length === 0;
    if (!panicking && suspectSince === undefined) continue;
    const present = presentOf(name);
    const alive = (i: InstanceView) => !nodesDown.has(i.node);

    // Panic: the service was routed, none of its instances passes now. Route every instance
    // still registered on a live node (as Envoy's panic mode does): instances that fail one
    // after the other under load would otherwise leave the last survivor with all the traffic.
    if (panicking && present.size > 0) {
      const keep = [...present.values()].filter(alive);
      if (keep.length > 0) {
        const instances = keep.map((i) => present.get(key(i))!);
        services.set(name, withInstances(current, instances));
        held.push({ service: name, reason: "panic", instances: instances.map(key) });
        continue;
      }
    }
    // Restart grace: routed before, absent from the catalog now.
    if (suspectSince !== undefined) {
      const routedKeys = new Set(current.instances.map(key));
      const missing = prev.instances.filter(
        (i) => !present.has(key(i)) && !routedKeys.has(key(i)) && alive(i),
      );
      if (missing.length > 0) {
        services.set(name, withInstances(current, [...current.instances, ...missing]));
        held.push({ service: name, reason: "consul-restarted", instances: missing.map(key) });
      }
    }
  }
  // Refilled: nothing left to hold for the restart, so the grace period ends early.
  if (!held.some((h) => h.reason === "consul-restarted")) suspectSince = undefined;
  return {
    view: { services: [...services.values()].sort((a, b) => byText(a.name, b.name)) },
    held: held.sort((a, b) => byText(a.service, b.service)),
    suspectSince,
    graceEndsAt: suspectSince === undefined ? undefined : suspectSince + graceMs,
  };
}

/**
 * holdRouted from snapshot to snapshot: carries what was routed last, the grace period in force
 * and the last index reset seen (a reset starts a grace period once). Pure, stateful.
 */
export class Holder {
  readonly #graceMs: number;
  readonly #panic: boolean;
  #routed: View | undefined;
  #suspectSince: number | undefined;
  #resetSeen: number | undefined;
  #heldKey = "[]";
  #held: Held[] = [];

  constructor(options: { graceMs: number; panic: boolean }) {
    this.#graceMs = options.graceMs;
    this.#panic = options.panic;
  }

  /** What the last call held. */
  get held(): readonly Held[] {
    return this.#held;
  }

  /** The view to route now; `heldChanged` when what is held differs from the last call. */
  next(input: {
    routed: View;
    catalog: View;
    nodesDown: ReadonlySet<string>;
    now: number;
    /** The snapshot's index reset (Consul's index went backwards), if any. */
    indexResetAt: number | undefined;
  }): HoldResult & { heldChanged: boolean } {
    const { indexResetAt, ...rest } = input;
    if (indexResetAt !== undefined && indexResetAt !== this.#resetSeen) {
      this.#resetSeen = indexResetAt;
      this.#suspectSince = indexResetAt;
    }
    const r = holdRouted({
      ...rest,
      previous: this.#routed,
      suspectSince: this.#suspectSince,
      graceMs: this.#graceMs,
      panic: this.#panic,
    });
    this.#suspectSince = r.suspectSince;
    this.#routed = r.view;
    this.#held = r.held;
    const key = JSON.stringify(r.held);
    const heldChanged = key !== this.#heldKey;
    this.#heldKey = key;
    return { ...r, heldChanged };
  }
}
