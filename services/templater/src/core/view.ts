// The view: one plain, sorted object built from a catalog snapshot, the only thing templates
// see. Equal catalogs give equal views (and so byte-identical renders). Every value in it has
// passed nginx-values; what did not is listed in `rejects`, each with its reason.

import { aggregateStatus, type CatalogSnapshot, type HealthStatus } from "./catalog.ts";
import * as nv from "./nginx-values.ts";
import type { RouteNetworks } from "./route-networks.ts";

export interface ViewOptions {
  /** Only instances carrying this tag are routed. */
  routeTag: string;
  /** Instance statuses that go into the view (the catalog keeps all of them). */
  statuses: readonly HealthStatus[];
  /**
   * Service names (valid ones, from earlier views) to keep with no instances when the catalog
   * no longer has them, so their routes answer 503 rather than 404.
   */
  retain?: readonly string[];
  /** Addresses that may be routed (core/route-networks.ts); default: any valid IP. */
  networks?: RouteNetworks;
}

export interface InstanceView {
  id: string;
  node: string;
  address: string;
  port: number;
  status: HealthStatus;
  /** Bare words or double-quoted strings; unsafe tags are left out. */
  tags: string[];
  meta: Record<string, string>;
}

export interface ServiceView {
  name: string;
  /** Union of its instances' tags, sorted. */
  tags: string[];
  /** The meta entries all its instances agree on. */
  meta: Record<string, string>;
  instances: InstanceView[];
}

export interface View {
  services: ServiceView[];
}

export interface Reject {
  /** Stable identity, so a reject is logged once while it lasts, not on every change. */
  key: string;
  service: string;
  instance?: string;
  field: string;
  value: string;
  reason: string;
}

export interface BuiltView {
  /** What templates see: routed services, instances filtered by status. */
  view: View;
  /** Same services with instances of every status, for the status page. */
  catalog: View;
  rejects: Reject[];
  /** Nodes whose serfHealth check fails, sorted. */
  nodesDown: string[];
}

/** The node-level check every Consul agent carries: gossip says the node is alive. */
export const serfHealthCheck = "serfHealth";

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function sanitiseTags(
  raw: unknown,
  reject: (field: string, value: unknown, reason: string) => void,
): string[] {
  if (!Array.isArray(raw)) return [];
  const out = new Set<string>();
  for (const tag of raw) {
    const v = nv.literal(tag, nv.limits.tag, "tag");
    if (v.ok) out.add(v.value);
    else reject("tag", tag, v.reason);
  }
  return [...out].sort(byText);
}

function sanitiseMeta(
  raw: unknown,
  reject: (field: string, value: unknown, reason: string) => void,
): Record<string, string> {
  if (raw === null || typeof raw !== "object") return {};
  const entries: [string, string][] = [];
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    const k = nv.metaKey(key);
    if (!k.ok) {
      reject("meta key", key, k.reason);
      continue;
    }
    const v = nv.literal(value, nv.limits.metaValue, `meta ${key}`);
    if (v.ok) entries.push([key, v.value]);
    else reject(`meta ${key}`, value, v.reason);
  }
  return Object.fromEntries(entries.sort((a, b) => byText(a[0], b[0])));
}

/**
 * Service-level tags and meta from the instances a list holds (the union of their tags, the meta
 * they all agree on): an instance that is not in the list (registered critical, say) must not
 * change what templates see. Also used by core/hold.ts for the instances it holds.
 */
export function summarise(instances: readonly InstanceView[]): Pick<ServiceView, "tags" | "meta"> {
  const [first, ...rest] = instances;
  return {
    tags: [...new Set(instances.flatMap((i) => i.tags))].sort(byText),
    meta: first
      ? Object.fromEntries(Object.entries(first.meta).filter(([k, v]) => rest.every((i) => i.meta[k] === v)))
      : {},
  };
}

export function buildView(snapshot: CatalogSnapshot, options: ViewOptions): BuiltView {
  const rejects = new Map<string, Reject>();
  const addReject = (r: Omit<Reject, "key" | "value"> & { value: unknown }) => {
    const value = nv.describeValue(r.value);
    const key = [r.service, r.instance ?? "", r.field, value, r.reason].join("\u0000");
    rejects.set(key, { ...r, key, value });
  };

  // Check statuses by node, then by service ID ("" = node-level checks).
  const checks = new Map<string, Map<string, string[]>>();
  // Nodes whose agent Consul's gossip reports failed (`serfHealth` not passing): their instances
  // are never routed, whatever --statuses allows, and before anyone deregisters them.
  const nodesDown = new Set<string>();
  for (const c of snapshot.checks) {
    if (!c || typeof c.Node !== "string") continue;
    if (c.CheckID === serfHealthCheck && c.ServiceID === "" && c.Status !== "passing") nodesDown.add(c.Node);
    const byService = checks.get(c.Node) ?? new Map<string, string[]>();
    checks.set(c.Node, byService);
    const sid = typeof c.ServiceID === "string" ? c.ServiceID : "";
    byService.set(sid, [...(byService.get(sid) ?? []), String(c.Status)]);
  }

  const services = new Map<string, InstanceView[]>();
  for (const node of snapshot.nodes) {
    const nodeChecks = checks.get(node.node);
    for (const svc of node.services ?? []) {
      if (!svc || !Array.isArray(svc.Tags) || !svc.Tags.includes(options.routeTag)) continue;
      const name = nv.serviceName(svc.Service);
      if (!name.ok) {
        addReject({
          service: nv.describeValue(svc.Service),
          field: "name",
          value: svc.Service,
          reason: name.reason,
        });
        continue;
      }
      const service = name.value;
      const instanceReject = (field: string, value: unknown, reason: string) =>
        addReject({
          service,
          instance: typeof svc.ID === "string" ? nv.describeValue(svc.ID) : "?",
          field,
          value,
          reason,
        });
      const id = nv.token(svc.ID, nv.limits.id, "instance id");
      const nodeName = nv.token(node.node, nv.limits.id, "node name");
      const address = nv.ipAddress(svc.Address || node.address);
      const port = nv.port(svc.Port);
      const refused = address.ok ? (options.networks?.refuse(address.value.address) ?? null) : null;
      if (refused !== null) {
        instanceReject("address", svc.Address || node.address, `${refused}; instance left out`);
        continue;
      }
      if (!id.ok || !nodeName.ok || !address.ok || !port.ok) {
        const [field, value, reason] = !id.ok
          ? ["id", svc.ID, id.reason]
          : !nodeName.ok
            ? ["node", node.node, nodeName.reason]
            : !address.ok
              ? ["address", svc.Address || node.address, address.reason]
              : ["port", svc.Port, port.ok ? "" : port.reason];
        instanceReject(field, value, `${reason}; instance left out`);
        continue;
      }
      const status = aggregateStatus([...(nodeChecks?.get("") ?? []), ...(nodeChecks?.get(svc.ID) ?? [])]);
      const list = services.get(service) ?? [];
      services.set(service, list);
      list.push({
        id: id.value,
        node: nodeName.value,
        address: address.value.address,
        port: port.value,
        status,
        tags: sanitiseTags(svc.Tags, instanceReject),
        meta: sanitiseMeta(svc.Meta, instanceReject),
      });
    }
  }

  const catalog: ServiceView[] = [];
  const view: ServiceView[] = [];
  for (const name of options.retain ?? []) if (!services.has(name)) services.set(name, []);
  for (const name of [...services.keys()].sort(byText)) {
    const all = services.get(name)!.sort((a, b) => byText(a.id, b.id) || byText(a.node, b.node));
    const routed = all.filter((i) => options.statuses.includes(i.status) && !nodesDown.has(i.node));
    catalog.push({ name, ...summarise(all), instances: all });
    view.push({ name, ...summarise(routed), instances: routed });
  }
  return {
    view: { services: view },
    catalog: { services: catalog },
    rejects: [...rejects.values()].sort((a, b) => byText(a.key, b.key)),
    nodesDown: [...nodesDown].sort(byText),
  };
}

/**
 * `built` with one service rebuilt from `slice` (that service's instances and checks, as
 * core/catalog.ts's ServiceAnswer carries them): equal to buildView of the whole catalog with
 * that service replaced, at the cost of one service. undefined when the slice shows a node's
 * health other than `built` does: a node-level change reaches every service on the node, so it
 * takes a whole build.
 */
export function patchService(
  built: BuiltView,
  name: string,
  slice: Pick<CatalogSnapshot, "nodes" | "checks">,
  options: ViewOptions,
): BuiltView | undefined {
  const one = buildView(
    { ...slice, observedAt: 0 },
    { ...options, retain: options.retain?.includes(name) ? [name] : [] },
  );
  const shownName = nv.describeValue(name); // how a reject of an unusable name names it
  const down = new Set(built.nodesDown);
  for (const n of slice.nodes) if (one.nodesDown.includes(n.node) !== down.has(n.node)) return undefined;
  if (one.view.services.some((s) => s.name !== name)) return undefined;
  // Lists are sorted by name: one copy with the service replaced, inserted or left out.
  const put = (list: readonly ServiceView[], s: ServiceView | undefined): ServiceView[] => {
    let at = list.findIndex((x) => byText(x.name, name) >= 0);
    if (at < 0) at = list.length;
    const present = list[at]?.name === name ? 1 : 0;
    return s ? list.toSpliced(at, present, s) : list.toSpliced(at, present);
  };
  return {
    view: { services: put(built.view.services, one.view.services[0]) },
    catalog: { services: put(built.catalog.services, one.catalog.services[0]) },
    rejects: [
      ...built.rejects.filter((r) => r.service !== name && r.service !== shownName),
      ...one.rejects,
    ].sort((a, b) => byText(a.key, b.key)),
    nodesDown: built.nodesDown,
  };
}
