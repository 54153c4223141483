// Desired vs actual → the Consul operations that make actual equal desired.
// Actual holds only registrations carrying this registrator's identity; anything
// else in Consul is never an input to a deregistration.

import { metaKeys, type Registration, type ServiceInstance, type TtlState } from "./types.ts";

export type Op =
  | { kind: "register"; instance: ServiceInstance; previous?: Registration }
  | { kind: "deregister"; registration: Registration }
  | { kind: "set-status"; instance: ServiceInstance; ttl: TtlState }
  | { kind: "remove-check"; serviceId: string; checkId: string };

export interface PlanOptions {
  /** A TTL check whose status should be re-sent even if unchanged (its TTL is running out). */
  refreshDue?: (checkId: string) => boolean;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function sameMeta(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

/** Whether Consul's copy needs a re-registration (anything but TTL status differs). */
export function needsRegistration(d: ServiceInstance, a: Registration): boolean {
  return (
    d.name !== a.name ||
    d.address !== a.address ||
    d.port !== a.port ||
    !sameList(d.tags, a.tags) ||
    !sameMeta(d.meta, a.meta) ||
    !d.checks.every((c) => a.checks[c.id] !== undefined)
  );
}

/**
 * What Consul holds once `i` is registered over `previous`: a check that existed
 * keeps its status (Consul 1.8 does that), a new TTL check starts with the status
 * sent, any other new check starts critical until Consul has run it.
 */
export function afterRegistration(i: ServiceInstance, previous?: Registration): Registration {
  const checks: Record<string, string> = {};
  for (const c of i.checks) {
    checks[c.id] = previous?.checks[c.id] ?? (c.kind === "ttl" ? (i.ttl?.status ?? "critical") : "critical");
  }
  return {
    id: i.id,
    name: i.name,
    address: i.address,
    port: i.port,
    tags: [...i.tags],
    meta: { ...i.meta },
    checks,
  };
}

export function planChanges(
  desired: readonly ServiceInstance[],
  actual: readonly Registration[],
  opts: PlanOptions = {},
): Op[] {
  const ops: Op[] = [];
  const byId = new Map(actual.map((a) => [a.id, a]));
  const wanted = new Set<string>();
  for (const d of desired) {
    wanted.add(d.id);
    const a = byId.get(d.id);
    if (!a) {
      ops.push({ kind: "register", instance: d });
      continue;
    }
    const stale = Object.keys(a.checks).filter((id) => !d.checks.some((c) => c.id === id));
    if (needsRegistration(d, a)) ops.push({ kind: "register", instance: d, previous: a });
    for (const checkId of stale) ops.push({ kind: "remove-check", serviceId: d.id, checkId });
    // A re-registration keeps an existing check's status, so status is always its own step.
    if (d.ttl && a.checks[d.ttl.checkId] !== undefined) {
      const due = opts.refreshDue?.(d.ttl.checkId) ?? false;
      if (a.checks[d.ttl.checkId] !== d.ttl.status || due) {
        ops.push({ kind: "set-status", instance: d, ttl: d.ttl });
      }
    }
  }
  for (const a of actual) if (!wanted.has(a.id)) ops.push({ kind: "deregister", registration: a });
  return ops;
}

export interface ClaimContext {
  /** IDs registered in Consul by anyone else: never overwritten. */
  foreignIds: ReadonlySet<string>;
  /** The container an owned registration with this ID belongs to now, if any. */
  currentOwner: (serviceId: string) => string | undefined;
  /** Whether another running container (not among the candidates) keeps this ID. */
  heldElsewhere?: (serviceId: string, containerId: string) => string | undefined;
  /** Creation time of a container, to let the older one keep a contested ID. */
  created: (containerId: string) => string;
  /**
   * The container (running or stopped) whose default ID (`<name>:<port>`) this is, if any:
   * only that container may use it.
   */
  defaultOwner?: (serviceId: string) => { id: string; name: string } | undefined;
}

/** `<container name>:<port>` or `<container name>:<port>:udp` → the name; undefined for other IDs. */
export function defaultIdName(serviceId: string): string | undefined {
  const m = /^(.+):(\d{1,5})(?::udp)?$/.exec(serviceId);
  return m && Number(m[2]) >= 1 && Number(m[2]) <= 65535 ? m[1] : undefined;
}

export interface Rejected {
  instance: ServiceInstance;
  reason: string;
}

/**
 * Two instances can never share an ID, and an ID that is someone else's is never
 * taken over. The container that holds an ID keeps it; otherwise the older one.
 */
export function resolveClaims(
  desired: readonly ServiceInstance[],
  ctx: ClaimContext,
): { kept: ServiceInstance[]; rejected: Rejected[] } {
  const rejected: Rejected[] = [];
  const byId = new Map<string, ServiceInstance[]>();
  for (const d of desired) {
    if (ctx.foreignIds.has(d.id)) {
      rejected.push({
        instance: d,
        reason: `service ID "${d.id}" is already registered in Consul by someone else (no ${metaKeys.owner} of this registrator); leaving it alone`,
      });
      continue;
    }
    const owner = ctx.defaultOwner?.(d.id);
    if (owner && owner.id !== d.containerId) {
      rejected.push({
        instance: d,
        reason: `service ID "${d.id}" is the default ID of container ${owner.name}, which keeps it even while stopped; set a different SERVICE_ID`,
      });
      continue;
    }
    // The default owner takes its own ID back from whoever holds it.
    const holder = owner ? undefined : ctx.heldElsewhere?.(d.id, d.containerId);
    if (holder) {
      rejected.push({
        instance: d,
        reason: `service ID "${d.id}" is registered for running container ${holder.slice(0, 12)}; set a different SERVICE_ID`,
      });
      continue;
    }
    byId.set(d.id, [...(byId.get(d.id) ?? []), d]);
  }
  const kept: ServiceInstance[] = [];
  for (const [id, claimants] of byId) {
    if (claimants.length === 1) {
      kept.push(claimants[0]!);
      continue;
    }
    const owner = ctx.currentOwner(id);
    const ranked = [...claimants].sort((a, b) => {
      if (a.containerId === owner) return -1;
      if (b.containerId === owner) return 1;
      const ca = ctx.created(a.containerId);
      const cb = ctx.created(b.containerId);
      return ca < cb ? -1 : ca > cb ? 1 : a.containerId < b.containerId ? -1 : 1;
    });
    const winner = ranked[0]!;
    kept.push(winner);
    for (const loser of ranked.slice(1)) {
      rejected.push({
        instance: loser,
        reason: `service ID "${id}" is also claimed by container ${winner.containerName}, which keeps it; set a different SERVICE_ID`,
      });
    }
  }
  return { kept, rejected };
}
