// `npm run lab -- cluster status`: host → instances → Consul node → nginx, one row per instance,
// with every disagreement named. The join is pure; readClusterState fetches the three views.

import { aggregateStatus } from "../../../services/templater/src/core/catalog.ts";
import { routedByNginx } from "../state.ts";
import type { ClusterLab, InnerContainer } from "./cluster.ts";

export interface HostView {
  host: string;
  ip: string;
  /** The host's engine answered (a killed host does not). */
  up: boolean;
  /** serfHealth of the host's Consul node: passing, critical, or "absent". */
  node: string;
}

export interface ConsulEntry {
  service: string;
  node: string;
  address: string;
  port: number;
  status: string;
}

export interface ClusterState {
  hosts: HostView[];
  instances: InnerContainer[];
  consul: ConsulEntry[];
  nginx: Map<string, Set<string>>;
}

export interface ClusterRow {
  host: string;
  instance: string;
  address: string;
  docker: string;
  consul: string;
  nginx: string;
  problem: string;
}

export interface ClusterStatus {
  hosts: HostView[];
  rows: ClusterRow[];
  ok: boolean;
}

/** Pure: joins the views. */
export function joinCluster(state: ClusterState): ClusterStatus {
  const rows: ClusterRow[] = [];
  const seen = new Set<ConsulEntry>();
  const ipOf = new Map(state.hosts.map((h) => [h.host, h.ip]));
  for (const i of state.instances) {
    const address = i.port ? `${ipOf.get(i.host)}:${i.port}` : "-";
    const c = state.consul.find((e) => e.service === i.service && `${e.address}:${e.port}` === address);
    if (c) seen.add(c);
    const routed = state.nginx.get(i.service)?.has(address) ?? false;
    const running = i.state === "running";
    let problem = "";
    if (running && !c && !/starting/.test(i.status)) problem = "running but not in Consul";
    else if (!running && c) problem = "stopped but still in Consul";
    else if (c?.status === "passing" && !routed) problem = "passing but not routed by nginx";
    else if (c && c.status !== "passing" && routed) problem = "routed by nginx but not passing";
    rows.push({
      host: i.host,
      instance: `${i.service}/${i.name}`,
      address,
      docker: i.status,
      consul: c ? `${c.node} ${c.status}` : "-",
      nginx: routed ? "routed" : "-",
      problem,
    });
  }
  for (const c of state.consul) {
    if (seen.has(c)) continue;
    const address = `${c.address}:${c.port}`;
    const host = state.hosts.find((h) => h.ip === c.address);
    const routed = state.nginx.get(c.service)?.has(address) ?? false;
    rows.push({
      host: c.node,
      instance: `${c.service}/?`,
      address,
      docker: host && !host.up ? "host down" : "-",
      consul: `${c.node} ${c.status}`,
      nginx: routed ? "routed" : "-",
      problem: routed
        ? "routed but no such container"
        : host && !host.up
          ? ""
          : "in Consul but no such container",
    });
  }
  for (const [service, set] of state.nginx) {
    for (const address of set) {
      if (rows.some((r) => r.address === address)) continue;
      rows.push({
        host: "-",
        instance: `${service}/?`,
        address,
        docker: "-",
        consul: "-",
        nginx: "routed",
        problem: "routed by nginx but unknown",
      });
    }
  }
  const hostProblems = state.hosts.some((h) => h.up !== (h.node === "passing"));
  return { hosts: state.hosts, rows, ok: !hostProblems && rows.every((r) => r.problem === "") };
}

export function formatClusterStatus(s: ClusterStatus): string {
  const out: string[] = [];
  for (const h of s.hosts) {
    out.push(`${h.host} (${h.ip}): engine ${h.up ? "up" : "DOWN"}, Consul node serfHealth ${h.node}`);
    const rows = s.rows.filter((r) => r.host === h.host);
    const width = Math.max(12, ...rows.map((r) => r.instance.length));
    for (const r of rows) {
      out.push(
        `  ${r.instance.padEnd(width)}  ${r.address.padEnd(20)} ${r.docker.padEnd(24)} consul: ${r.consul.padEnd(20)} nginx: ${r.nginx.padEnd(7)}${r.problem ? `  ← ${r.problem}` : ""}`,
      );
    }
  }
  for (const r of s.rows.filter((x) => !s.hosts.some((h) => h.host === x.host))) {
    out.push(`  ${r.instance}  ${r.address}  consul: ${r.consul}  nginx: ${r.nginx}  ← ${r.problem}`);
  }
  out.push(s.ok ? "all consistent" : "PROBLEMS above");
  return out.join("\n");
}

interface HealthState {
  Node: string;
  CheckID: string;
  ServiceName: string;
  ServiceID: string;
  Status: string;
}
interface CatalogService {
  ServiceTags: string[] | null;
  Node: string;
  ServiceAddress: string;
  Address: string;
  ServicePort: number;
  ServiceID: string;
}

export async function readClusterState(lab: ClusterLab): Promise<ClusterState> {
  const api = await lab.api();
  const token = await lab.managementToken();
  const checks = await api.request<HealthState[]>("GET", "/v1/health/state/any", { token });
  const hosts = await Promise.all(
    lab.plan.hosts.map(async (h) => ({
      host: h.node,
      ip: h.ip,
      up:
        (
          await lab.hostDocker(h.node, ["version", "-f", "{{.Server.Version}}"], {
            reject: false,
            timeoutMs: 5000,
          })
        ).exitCode === 0,
      node: checks.find((c) => c.Node === h.node && c.CheckID === "serfHealth")?.Status ?? "absent",
    })),
  );
  const instances = await lab.instances();
  const services = [...new Set(checks.map((c) => c.ServiceName).filter((s) => s && s !== "consul"))];
  const consul: ConsulEntry[] = [];
  for (const service of services) {
    for (const e of await api.request<CatalogService[]>(
      "GET",
      `/v1/catalog/service/${encodeURIComponent(service)}`,
      { token },
    )) {
      // The plain road's edge routes the "http" tag; the Swarm road's services (tag "swarm",
      // overlay addresses) are its own edge's business.
      if (!(e.ServiceTags ?? []).includes("http")) continue;
      const mine = checks.filter(
        (c) => c.Node === e.Node && (c.ServiceID === e.ServiceID || c.CheckID === "serfHealth"),
      );
      consul.push({
        service,
        node: e.Node,
        address: e.ServiceAddress || e.Address,
        port: e.ServicePort,
        status: aggregateStatus(mine.map((c) => c.Status)),
      });
    }
  }
  let nginx = new Map<string, Set<string>>();
  try {
    nginx = await routedByNginx(lab.opsUrl());
  } catch {
    // The edge is down: nothing is routed, and every passing instance is flagged.
  }
  return { hosts, instances, consul, nginx };
}

export async function clusterStatus(lab: ClusterLab): Promise<ClusterStatus> {
  return joinCluster(await readClusterState(lab));
}
