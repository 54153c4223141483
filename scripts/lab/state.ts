// Reads the three views the status table joins: Docker (the project's containers that
// carry SERVICE_* labels), Consul (health of those services) and nginx (the upstreams
// the templater reports nginx is using now).

import { aggregateStatus } from "../../services/templater/src/core/catalog.ts";
import type { Lab } from "./compose.ts";
import type { ConsulInstance, DockerInstance } from "./status.ts";

interface HealthEntry {
  Service: { ID: string; Service: string; Address: string; Port: number };
  Node: { Address: string };
  Checks: { Status: string }[];
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  return (await res.json()) as T;
}

export async function readLabState(lab: Lab, consulUrl: string, opsUrl: string) {
  const docker: DockerInstance[] = (await lab.containers())
    .filter(
      (c) =>
        Object.keys(c.labels).some((k) => k.startsWith("SERVICE_")) && c.labels.SERVICE_IGNORE !== "true",
    )
    .map((c) => ({ service: c.service, name: c.name, ip: c.ip, state: c.state, health: c.health }));
  const services = [...new Set(docker.map((d) => d.service))];
  const catalog = await getJson<Record<string, string[]>>(`${consulUrl}/v1/catalog/services`);
  for (const s of Object.keys(catalog)) if (s !== "consul" && !services.includes(s)) services.push(s);
  const consul: ConsulInstance[] = [];
  for (const service of services) {
    for (const e of await getJson<HealthEntry[]>(
      `${consulUrl}/v1/health/service/${encodeURIComponent(service)}`,
    )) {
      consul.push({
        service,
        id: e.Service.ID,
        address: e.Service.Address || e.Node.Address,
        port: e.Service.Port,
        status: aggregateStatus(e.Checks.map((c) => c.Status)),
      });
    }
  }
  return { docker, consul, nginx: await routedByNginx(opsUrl) };
}

/** service → "ip:port" set nginx is using now, from the templater's status (its ops listener). */
export async function routedByNginx(opsUrl: string): Promise<Map<string, Set<string>>> {
  const status = await getJson<{ services?: { name: string; upstream: string[] }[] }>(`${opsUrl}/status`);
  return new Map((status.services ?? []).map((s) => [s.name, new Set(s.upstream)]));
}
