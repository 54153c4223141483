// `docker inspect` output → ContainerFacts: only what the registrator needs, so a
// thousand containers cost little memory. Pure; the I/O is in docker/source.ts.

import type Docker from "dockerode";
import { prefix } from "../core/service-keys.ts";
import type { ContainerFacts, DockerHealth, PortBinding } from "../core/types.ts";

function serviceEnv(env: readonly string[] | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of env ?? []) {
    if (!entry.startsWith(prefix)) continue;
    const eq = entry.indexOf("=");
    if (eq < 0) continue;
    out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}

function health(info: Docker.ContainerInspectInfo): DockerHealth {
  const s = info.State.Health?.Status;
  return s === "starting" || s === "healthy" || s === "unhealthy" ? s : "none";
}

function hasHealthcheck(info: Docker.ContainerInspectInfo): boolean {
  const test = info.Config.Healthcheck?.Test;
  if (test && test.length > 0) return test[0] !== "NONE";
  // Inherited from the image: Config shows it when set; State.Health appears once it runs.
  return info.State.Health !== undefined;
}

export function factsFromInspect(info: Docker.ContainerInspectInfo): ContainerFacts {
  const networks: Record<string, string> = {};
  for (const [name, n] of Object.entries(info.NetworkSettings?.Networks ?? {})) {
    networks[name] = n?.IPAddress ?? "";
  }
  const bindings: Record<string, PortBinding[]> = {};
  for (const [key, list] of Object.entries(info.NetworkSettings?.Ports ?? {})) {
    if (!list) continue;
    bindings[key] = list.map((b) => ({ hostIp: b.HostIp ?? "", hostPort: Number(b.HostPort) || 0 }));
  }
  const config = info.Config as Docker.ContainerInspectInfo["Config"] & { StopSignal?: string };
  return {
    id: info.Id,
    name: info.Name.replace(/^\//, ""),
    image: config.Image ?? "",
    created: info.Created,
    labels: { ...(config.Labels ?? {}) },
    env: serviceEnv(config.Env),
    running: info.State.Running === true,
    paused: info.State.Paused === true,
    startedAt: info.State.StartedAt,
    networkMode: info.HostConfig?.NetworkMode ?? "default",
    networks,
    exposed: Object.keys(config.ExposedPorts ?? {}),
    bindings,
    healthcheck: hasHealthcheck(info),
    health: health(info),
    stopSignal: config.StopSignal ?? "",
  };
}
