// The Consul data the templater reads, as the HTTP API returns it (1.8+), and the snapshot
// the watcher hands to the core. Field types are what Consul promises; the view builder still
// checks every value, because whoever registered the service chose it.

/** One entry of `/v1/catalog/node/<node>` → `Services`. */
export interface ConsulService {
  ID: string;
  Service: string;
  Tags: string[] | null;
  Address: string;
  Port: number;
  Meta: Record<string, string> | null;
}

/** One entry of `/v1/health/state/any`. */
export interface ConsulCheck {
  Node: string;
  CheckID: string;
  Status: string;
  /** "" for a node-level check (e.g. serfHealth), which applies to every service on the node. */
  ServiceID: string;
}

export interface CatalogNode {
  node: string;
  /** The node's address, used for a service registered without one. */
  address: string;
  services: ConsulService[];
}

export interface CatalogSnapshot {
  nodes: CatalogNode[];
  checks: ConsulCheck[];
  /** ms since the epoch at which the watcher first saw the change this snapshot carries. */
  observedAt: number;
  /** When Consul's index last went backwards (restarted or replaced, maybe empty); ms since the epoch. */
  indexResetAt?: number;
}

export type HealthStatus = "passing" | "warning" | "critical";
export const healthStatuses: readonly HealthStatus[] = ["passing", "warning", "critical"];

const severity: Record<HealthStatus, number> = { passing: 0, warning: 1, critical: 2 };

/** Consul's own rule: an instance is as healthy as its worst node or service check; no checks = passing. */
export function aggregateStatus(statuses: Iterable<string>): HealthStatus {
  let worst: HealthStatus = "passing";
  for (const s of statuses) {
    // Anything Consul might add later (or a garbled value) counts as critical, never as healthy.
    const status: HealthStatus = s === "passing" || s === "warning" ? s : "critical";
    if (severity[status] > severity[worst]) worst = status;
  }
  return worst;
}
