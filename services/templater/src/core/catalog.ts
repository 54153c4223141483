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

/**
 * One service as `/v1/health/service/<name>` returned it: its instances (grouped by node, as in a
 * snapshot) and their checks, node-level ones included. `index` is the service's own
 * X-Consul-Index (Consul keeps one per service), so it says how new the answer is.
 */
export interface ServiceAnswer {
  name: string;
  index: number;
  nodes: CatalogNode[];
  checks: ConsulCheck[];
}

/** A snapshot's parts of one service: what a ServiceAnswer for it would hold. */
export function serviceSlice(nodes: readonly CatalogNode[], checks: readonly ConsulCheck[], name: string) {
  const out: CatalogNode[] = [];
  const ids = new Set<string>();
  for (const n of nodes) {
    const services = n.services.filter((s) => s.Service === name);
    if (services.length === 0) continue;
    out.push({ node: n.node, address: n.address, services });
    for (const s of services) ids.add(`${n.node}\u0000${s.ID}`);
  }
  const onNodes = new Set(out.map((n) => n.node));
  return {
    nodes: out,
    checks: checks.filter(
      (c) => onNodes.has(c.Node) && (c.ServiceID === "" || ids.has(`${c.Node}\u0000${c.ServiceID}`)),
    ),
  };
}

/**
 * The snapshot's nodes and checks with each answer's service replaced by what the answer holds
 * (answers newer than the node reads, from the per-service watches). Node-level checks stay the
 * snapshot's. An answer older than the snapshot's checks (`checksIndex`, the index of
 * /v1/health/state/any they came with) brings its instances but not their checks: the newer
 * checks already hold every check those instances still have. Pure; the inputs are not changed.
 */
export function withServiceAnswers(
  nodes: readonly CatalogNode[],
  checks: readonly ConsulCheck[],
  answers: readonly ServiceAnswer[],
  checksIndex = 0,
): { nodes: CatalogNode[]; checks: ConsulCheck[] } {
  if (answers.length === 0) return { nodes: [...nodes], checks: [...checks] };
  const names = new Set(answers.map((a) => a.name));
  const checksFrom = new Set(answers.filter((a) => a.index >= checksIndex).map((a) => a.name));
  const replaced = new Set<string>(); // node \0 service ID whose service checks go
  const byNode = new Map<string, CatalogNode>();
  for (const n of nodes) {
    const keep = n.services.filter((s) => {
      if (!names.has(s.Service)) return true;
      if (checksFrom.has(s.Service)) replaced.add(`${n.node}\u0000${s.ID}`);
      return false;
    });
    byNode.set(n.node, { node: n.node, address: n.address, services: keep });
  }
  const added: ConsulCheck[] = [];
  const nodeChecked = new Set(checks.filter((c) => c.ServiceID === "").map((c) => c.Node));
  for (const a of answers) {
    const own = checksFrom.has(a.name);
    for (const n of a.nodes) {
      const node = byNode.get(n.node) ?? { node: n.node, address: n.address, services: [] };
      byNode.set(n.node, node);
      node.services.push(...n.services);
      if (own) for (const s of n.services) replaced.add(`${n.node}\u0000${s.ID}`);
    }
    // Node-level checks stay the snapshot's, except for a node the snapshot does not know yet.
    added.push(
      ...a.checks.filter(
        (c) => (own && c.ServiceID !== "") || (c.ServiceID === "" && !nodeChecked.has(c.Node)),
      ),
    );
    for (const c of a.checks) if (c.ServiceID === "") nodeChecked.add(c.Node);
  }
  const kept = checks.filter((c) => c.ServiceID === "" || !replaced.has(`${c.Node}\u0000${c.ServiceID}`));
  const sorted = [...byNode.values()].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  return { nodes: sorted, checks: [...kept, ...added] };
}
