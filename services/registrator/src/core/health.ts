// Which checks an instance gets, and the status of its TTL check.
//
// A container with a Docker HEALTHCHECK or a readiness path (SERVICE_READY_HTTP)
// gets one TTL check the registrator drives: Docker's verdict when it has one
// (healthy → passing, unhealthy → critical), otherwise passing once the readiness
// probe got a 2xx, critical before. HTTP and TCP checks are run by Consul itself.

import { hostPort } from "../../../../lib/host-port.ts";
import type { CheckSpec, DockerHealth, TtlState } from "./types.ts";
import type { ServiceKeys } from "./service-keys.ts";

export const defaultCheckIntervalMs = 10_000;

export interface HealthInputs {
  health: DockerHealth;
  healthcheck: boolean;
  readyPath: string | undefined;
  /** The readiness probe answered 2xx since the container started. */
  readyOk: boolean;
}

export function ttlCheckId(serviceId: string): string {
  return `service:${serviceId}:health`;
}

export function needsTtlCheck(h: Pick<HealthInputs, "healthcheck" | "readyPath">): boolean {
  return h.healthcheck || h.readyPath !== undefined;
}

export function ttlState(serviceId: string, h: HealthInputs): TtlState {
  const checkId = ttlCheckId(serviceId);
  if (h.health === "unhealthy") return { checkId, status: "critical", note: "Docker health: unhealthy" };
  if (h.health === "healthy") return { checkId, status: "passing", note: "Docker health: healthy" };
  if (h.readyPath !== undefined && h.readyOk) {
    return { checkId, status: "passing", note: `ready: GET ${h.readyPath} answered 2xx` };
  }
  if (h.healthcheck) return { checkId, status: "critical", note: "Docker health: starting" };
  return { checkId, status: "critical", note: `waiting for GET ${h.readyPath} to answer 2xx` };
}

/** Keep probing only while nothing else has decided the status. */
export function wantsReadyProbe(h: HealthInputs): boolean {
  return h.readyPath !== undefined && !h.readyOk && h.health !== "healthy" && h.health !== "unhealthy";
}

export function checkSpecs(
  serviceId: string,
  address: string,
  port: number,
  keys: ServiceKeys,
  h: HealthInputs,
  checkTtlMs: number,
): CheckSpec[] {
  const checks: CheckSpec[] = [];
  const deregisterAfterMs = keys.checkDeregisterAfterMs;
  const timed = {
    intervalMs: keys.checkIntervalMs ?? defaultCheckIntervalMs,
    timeoutMs: keys.checkTimeoutMs,
    deregisterAfterMs,
  };
  if (needsTtlCheck(h)) {
    checks.push({
      id: ttlCheckId(serviceId),
      name: h.healthcheck ? "Docker health" : "readiness",
      kind: "ttl",
      ttlMs: checkTtlMs,
      deregisterAfterMs,
    });
  }
  for (const [scheme, path] of [
    ["http", keys.checkHttp],
    ["https", keys.checkHttps],
  ] as const) {
    if (path === undefined) continue;
    checks.push({
      id: `service:${serviceId}:${scheme}`,
      name: `${scheme.toUpperCase()} GET ${path}`,
      kind: "http",
      target: `${scheme}://${hostPort(address, port)}${path}`,
      ...timed,
    });
  }
  if (keys.checkTcp) {
    checks.push({
      id: `service:${serviceId}:tcp`,
      name: "TCP connect",
      kind: "tcp",
      target: hostPort(address, port),
      ...timed,
    });
  }
  return checks;
}
