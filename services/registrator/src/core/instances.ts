// A container's facts → the service instances it should have in Consul, plus the
// problems found on the way (each becomes one log line naming the container).

import { createHash } from "node:crypto";
import { endpointFor, type Endpoint } from "./address.ts";
import { checkSpecs, ttlState, wantsReadyProbe, type HealthInputs } from "./health.ts";
import { invalidName, keysForPort, parseServiceKeys, type ServiceKeys } from "./service-keys.ts";
import {
  metaKeys,
  type ContainerFacts,
  type LabelSelector,
  type MappingOptions,
  type Problem,
  type Proto,
  type ServiceInstance,
} from "./types.ts";
import { cleanDerivedName, isValidId, isValidName } from "./validate.ts";

/** What the registrator itself knows about a container beyond Docker's facts. */
export interface RuntimeState {
  /** Stopping (SIGTERM seen): out of rotation until it starts again. */
  draining: boolean;
  /** The readiness probe answered 2xx for this instance since the container started. */
  ready: (instanceId: string) => boolean;
}

export interface Mapping {
  instances: ServiceInstance[];
  problems: Problem[];
}

/** More exposed ports than this is a range (EXPOSE 8000-9000), not services. */
export const maxPorts = 64;

const composeServiceLabel = "com.docker.compose.service";
const noRuntimeState: RuntimeState = { draining: false, ready: () => false };

export function matchesFilter(labels: Record<string, string>, filter: readonly LabelSelector[]): boolean {
  return filter.every((s) =>
    s.value === undefined ? Object.hasOwn(labels, s.key) : labels[s.key] === s.value,
  );
}

/** "registry:5000/team/web:1.2@sha256:…" → "web"; "" for an image ID. */
export function imageBaseName(image: string): string {
  if (/^(sha256:)?[0-9a-f]{12,64}$/.test(image)) return "";
  const noDigest = image.split("@")[0]!;
  const lastSlash = noDigest.lastIndexOf("/");
  const base = noDigest.slice(lastSlash + 1);
  return base.split(":")[0]!;
}

export function defaultServiceName(c: Pick<ContainerFacts, "labels" | "image">): string {
  const compose = c.labels[composeServiceLabel];
  if (compose) {
    const name = cleanDerivedName(compose);
    if (name) return name;
  }
  return cleanDerivedName(imageBaseName(c.image));
}

interface PortSpec {
  port: number;
  proto: Proto;
}

function containerPorts(c: ContainerFacts, problems: Problem[]): PortSpec[] {
  const seen = new Map<string, PortSpec>();
  for (const key of new Set([...c.exposed, ...Object.keys(c.bindings)])) {
    const m = /^(\d{1,5})\/(tcp|udp|sctp)$/.exec(key);
    const port = m ? Number(m[1]) : NaN;
    if (!m || !(port >= 1 && port <= 65535)) {
      problems.push({ effect: "dropped", message: `port "${key}" is malformed; ignored` });
      continue;
    }
    if (m[2] === "sctp") {
      problems.push({ effect: "dropped", message: `port ${key}: only tcp and udp ports are registered` });
      continue;
    }
    seen.set(key, { port, proto: m[2] as Proto });
  }
  return [...seen.values()].sort((a, b) => a.port - b.port || a.proto.localeCompare(b.proto));
}

/** Stable digest of everything Consul holds about an instance except check status. */
export function specDigest(i: Omit<ServiceInstance, "ttl" | "readyPath" | "containerName">): string {
  const meta = Object.fromEntries(
    Object.entries(i.meta)
      .filter(([k]) => k !== metaKeys.spec)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
  const body = JSON.stringify([i.id, i.name, i.address, i.port, i.tags, meta, i.checks]);
  return createHash("sha1").update(body).digest("hex").slice(0, 16);
}

/** Consul takes at most 64 meta pairs; the registrator needs three of them. */
export const maxUserMeta = 64 - Object.keys(metaKeys).length;

function limitMeta(meta: Record<string, string>, problems: Problem[]): Record<string, string> {
  const keys = Object.keys(meta).sort();
  if (keys.length <= maxUserMeta) return meta;
  problems.push({
    effect: "dropped",
    message: `${keys.length} meta keys given, Consul takes ${maxUserMeta} besides the registrator's own; dropped ${keys.slice(maxUserMeta).join(", ")}`,
  });
  return Object.fromEntries(keys.slice(0, maxUserMeta).map((k) => [k, meta[k]!]));
}

/**
 * SERVICE_<port>_ID as given; SERVICE_ID as given for a single port, with the port added
 * when the container has several; otherwise `<container name>:<port>` (`:udp` for UDP).
 */
function instanceId(
  container: string,
  portId: string | undefined,
  generalId: string | undefined,
  isGroup: boolean,
  port: number,
  proto: Proto,
): string {
  if (portId !== undefined) return portId;
  const udp = proto === "udp" ? ":udp" : "";
  if (generalId !== undefined) return isGroup ? `${generalId}:${port}${udp}` : generalId;
  return `${container}:${port}${udp}`;
}

function dedupe(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((p) => !seen.has(p.message) && seen.add(p.message));
}

export function containerInstances(
  c: ContainerFacts,
  opts: MappingOptions,
  rt: RuntimeState = noRuntimeState,
): Mapping {
  const problems: Problem[] = [];
  const none = (): Mapping => ({ instances: [], problems });
  if (!matchesFilter(c.labels, opts.labelFilter)) return none();
  if (opts.scopeNetwork && !Object.hasOwn(c.networks, opts.scopeNetwork)) return none();
  if (!c.running || c.paused || rt.draining) return none();

  const parsed = parseServiceKeys(c.env, c.labels);
  problems.push(...parsed.problems);
  if (parsed.general.ignore) return none();

  const ports = containerPorts(c, problems);
  if (ports.length > maxPorts) {
    problems.push({
      effect: "skipped",
      message: `exposes ${ports.length} ports (more than ${maxPorts}); set SERVICE_IGNORE or expose fewer ports`,
    });
    return none();
  }
  for (const port of parsed.ports.keys()) {
    if (!ports.some((p) => p.port === port)) {
      problems.push({
        effect: "dropped",
        message: `SERVICE_${port}_* settings refer to port ${port}, which the container does not expose`,
      });
    }
  }

  // Ports that are not published do not count in published mode (as in registrator).
  const placed: (PortSpec & { keys: ServiceKeys; at: Exclude<Endpoint, { unpublished: true }> })[] = [];
  for (const p of ports) {
    const keys = keysForPort(parsed, p.port);
    const at = endpointFor(c, opts, keys.network, p.port, p.proto);
    if (!("unpublished" in at)) placed.push({ ...p, keys, at });
  }
  const isGroup = placed.length > 1;
  const baseName = defaultServiceName(c);
  const instances: ServiceInstance[] = [];

  for (const p of placed) {
    const { keys, port, proto, at } = p;
    const own = parsed.ports.get(port);
    const where = `port ${port}/${proto}`;
    if (keys.ignore) continue;
    if (opts.explicit && keys.name === undefined) continue;
    if (keys.name === invalidName) continue;
    const chosenName = keys.name ?? baseName;
    if (!chosenName) {
      problems.push({
        effect: "skipped",
        message: `no SERVICE_NAME, and neither the compose service nor the image "${c.image}" gives a usable name`,
      });
      continue;
    }
    const name = own?.name !== undefined || !isGroup ? chosenName : `${chosenName}-${port}`;
    if (!isValidName(name)) {
      problems.push({
        effect: "skipped",
        message: `${where}: service name "${name}" is longer than 63 characters; set SERVICE_${port}_NAME`,
      });
      continue;
    }
    if ("skip" in at) {
      problems.push({ effect: "skipped", message: at.skip });
      continue;
    }
    const id = instanceId(c.name, own?.id, keys.id, isGroup, port, proto);
    if (!isValidId(id)) {
      problems.push({
        effect: "skipped",
        message: `${where}: service ID "${id.slice(0, 140)}" is not usable in Consul; set SERVICE_ID`,
      });
      continue;
    }
    const health: HealthInputs = {
      health: c.health,
      healthcheck: c.healthcheck,
      readyPath: keys.readyHttp,
      readyOk: rt.ready(id),
    };
    const tags = [...new Set([...(keys.tags ?? []), ...opts.extraTags])];
    const meta = {
      ...limitMeta(keys.meta, problems),
      [metaKeys.owner]: opts.identity,
      [metaKeys.container]: c.id,
    };
    const checks = checkSpecs(id, at.address, at.port, keys, health, opts.checkTtlMs);
    const instance: ServiceInstance = {
      id,
      name,
      address: at.address,
      port: at.port,
      tags,
      meta,
      containerId: c.id,
      containerName: c.name,
      checks,
    };
    instance.meta[metaKeys.spec] = specDigest(instance);
    if (checks.some((k) => k.kind === "ttl")) instance.ttl = ttlState(id, health);
    if (wantsReadyProbe(health)) instance.readyPath = keys.readyHttp;
    instances.push(instance);
  }
  return { instances, problems: dedupe(problems) };
}
