// The registrator's vocabulary: what it knows about a container, what it wants in
// Consul, and what Consul holds. Plain data; no I/O anywhere under core/.

export type Proto = "tcp" | "udp";
export type CheckStatus = "passing" | "critical";
export type AddressMode = "internal" | "published";
export type DockerHealth = "none" | "starting" | "healthy" | "unhealthy";

export interface PortBinding {
  hostIp: string;
  hostPort: number;
}

/** The part of `docker inspect` the registrator uses (see docker/facts.ts). */
export interface ContainerFacts {
  /** Full container ID. */
  id: string;
  /** Container name without the leading slash. */
  name: string;
  /** Image as the container was created from it (Config.Image). */
  image: string;
  created: string;
  labels: Record<string, string>;
  /** Only the SERVICE_* variables; nothing else from the environment is kept. */
  env: Record<string, string>;
  running: boolean;
  paused: boolean;
  startedAt: string;
  /** HostConfig.NetworkMode: bridge, host, none, container:<id>, or a network name. */
  networkMode: string;
  /** Network name → the container's IPv4 address on it ("" when it has none). */
  networks: Record<string, string>;
  /** Exposed ports as Docker spells them: "8080/tcp", "53/udp". */
  exposed: string[];
  /** Published ports: "8080/tcp" → host bindings. */
  bindings: Record<string, PortBinding[]>;
  /** The container has a Docker HEALTHCHECK (not disabled with NONE). */
  healthcheck: boolean;
  health: DockerHealth;
  /** Config.StopSignal, e.g. "SIGTERM" or "3"; "" when unset. */
  stopSignal: string;
}

/** A container label selector: the label exists, and equals `value` when one is given. */
export interface LabelSelector {
  key: string;
  value?: string;
}

/** Settings that shape how containers become service instances. */
export interface MappingOptions {
  /** Recorded in every registration; cleanup only touches registrations carrying it. */
  identity: string;
  addressMode: AddressMode;
  /** Network to take container addresses from; "" to choose per container. */
  network: string;
  /** Host address for published mode and host-network containers; "" when unknown. */
  hostIp: string;
  /** Only register containers that set a service name. */
  explicit: boolean;
  /** Tags added to every instance. */
  extraTags: string[];
  /** Only containers matching all selectors are considered. */
  labelFilter: LabelSelector[];
  /** Only containers attached to this Docker network are considered; "" or absent: any. */
  scopeNetwork?: string;
  /** TTL of checks driven by Docker health or readiness. */
  checkTtlMs: number;
}

export interface CheckSpec {
  /** Consul check ID: service:<service id>:<kind>. */
  id: string;
  name: string;
  kind: "ttl" | "http" | "tcp";
  /** URL for http, host:port for tcp. */
  target?: string;
  intervalMs?: number;
  timeoutMs?: number;
  ttlMs?: number;
  deregisterAfterMs?: number;
}

/** The status the registrator wants for an instance's TTL check, and why. */
export interface TtlState {
  checkId: string;
  status: CheckStatus;
  note: string;
}

/** What Consul holds for any service instance. */
export interface ServiceFields {
  id: string;
  name: string;
  address: string;
  port: number;
  tags: string[];
  /** Consul service meta; the registrator's own include the ownership keys. */
  meta: Record<string, string>;
}

/** One service instance the registrator wants in Consul. */
export interface ServiceInstance extends ServiceFields {
  containerId: string;
  containerName: string;
  checks: CheckSpec[];
  /** Present when the instance has a TTL check (HEALTHCHECK or readiness path). */
  ttl?: TtlState;
  /** Readiness path to probe (SERVICE_READY_HTTP), while not yet known to be ready. */
  readyPath?: string;
}

/** An instance as Consul holds it (only those carrying this registrator's identity). */
export interface Registration extends ServiceFields {
  /** Check ID → status. */
  checks: Record<string, string>;
}

/** Something wrong with a container's configuration, for one log line. */
export interface Problem {
  /** What happened because of it. */
  effect: "skipped" | "dropped";
  message: string;
}

/** The meta keys the registrator writes; users cannot set keys with this prefix. */
export const metaKeys = {
  owner: "dockside_owner",
  container: "dockside_container",
  spec: "dockside_spec",
} as const;
export const reservedMetaPrefix = "dockside_";
