// Every registrator setting, in one place: flag, environment variable, default and
// parser. services/registrator/README.md documents each of them.

import { isIP } from "node:net";
import { ConfigError, parsers, type Setting, type Values } from "../../../lib/config.ts";
import { checkConsulConnection, consulSettings } from "../../../lib/consul-client.ts";
import { levels, type Level } from "../../../lib/log.ts";
import type { AddressMode, LabelSelector } from "./core/types.ts";
import { isValidTag } from "./core/validate.ts";
import { dockerOptions } from "./docker/source.ts";

/** Identities travel in Consul meta values and log lines. */
const identityPattern = /^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,255}$/;

export function parseIdentity(raw: string): string {
  const v = raw.trim();
  if (v === "") return "";
  if (!identityPattern.test(v)) {
    throw new Error(`"${raw}" may use letters, digits and _ . : @ / - (at most 256 characters)`);
  }
  return v;
}

export function parseLabelFilter(raw: string): LabelSelector[] {
  return parsers
    .list()(raw)
    .map((item) => {
      const eq = item.indexOf("=");
      const key = eq < 0 ? item : item.slice(0, eq);
      if (!/^[A-Za-z0-9][A-Za-z0-9_.\-/]*$/.test(key))
        throw new Error(`"${item}": expected label or label=value`);
      return eq < 0 ? { key } : { key, value: item.slice(eq + 1) };
    });
}

export const registratorSettings = {
  ...consulSettings,
  dockerHost: {
    flag: "docker-host",
    env: "DOCKER_HOST",
    default: "unix:///var/run/docker.sock",
    help: "Docker engine: unix:///path or tcp://host:port (DOCKER_TLS_VERIFY and DOCKER_CERT_PATH apply)",
    parse: (raw: string) => {
      dockerOptions(raw, {});
      return raw;
    },
  } satisfies Setting<string>,
  identity: {
    flag: "identity",
    env: "REGISTRATOR_IDENTITY",
    default: "",
    help: "who owns the registrations this registrator writes (Consul meta dockside_owner)",
    parse: parseIdentity,
  } satisfies Setting<string>,
  resync: {
    flag: "resync",
    env: "REGISTRATOR_RESYNC",
    default: 30_000,
    help: "period of the full comparison of Docker and Consul",
    parse: parsers.duration({ minMs: 1000, maxMs: 24 * 3_600_000 }),
  } satisfies Setting<number>,
  addressMode: {
    flag: "address-mode",
    env: "REGISTRATOR_ADDRESS_MODE",
    default: "internal" as AddressMode,
    help: "internal: container IP and port; published: --host-ip and the published host port",
    parse: parsers.oneOf(["internal", "published"] as const),
  } satisfies Setting<AddressMode>,
  network: {
    flag: "network",
    env: "REGISTRATOR_NETWORK",
    default: "",
    help: "Docker network to take container addresses from (internal mode)",
    parse: parsers.string({ allowEmpty: true }),
  } satisfies Setting<string>,
  hostIp: {
    flag: "host-ip",
    env: "REGISTRATOR_HOST_IP",
    default: "",
    help: "this host's address, for published mode and host-network containers",
    parse: (raw: string) => {
      const v = raw.trim();
      if (v !== "" && isIP(v) === 0) throw new Error(`"${raw}" is not an IP address`);
      return v;
    },
  } satisfies Setting<string>,
  explicit: {
    flag: "explicit",
    env: "REGISTRATOR_EXPLICIT",
    default: false,
    help: "only register containers (ports) that set SERVICE_NAME or SERVICE_<port>_NAME",
    parse: parsers.bool(),
    switch: true,
  } satisfies Setting<boolean>,
  tags: {
    flag: "tags",
    env: "REGISTRATOR_TAGS",
    default: [] as string[],
    help: "comma-separated tags added to every instance",
    parse: (raw: string) => {
      const tags = parsers.list()(raw);
      const bad = tags.find((t) => !isValidTag(t));
      if (bad !== undefined) throw new Error(`tag "${bad}" has spaces, quotes, braces, ; \\ or $`);
      return tags;
    },
  } satisfies Setting<string[]>,
  labelFilter: {
    flag: "label-filter",
    env: "REGISTRATOR_LABEL_FILTER",
    default: [] as LabelSelector[],
    help: "only consider containers with these labels: label or label=value, comma-separated, all must match",
    parse: parseLabelFilter,
  } satisfies Setting<LabelSelector[]>,
  scopeNetwork: {
    flag: "scope-network",
    env: "REGISTRATOR_SCOPE_NETWORK",
    default: "",
    help: "only consider containers attached to this Docker network (the lab's: a plain `docker run --network <it>` registers)",
    parse: parsers.string({ allowEmpty: true }),
  } satisfies Setting<string>,
  checkTtl: {
    flag: "check-ttl",
    env: "REGISTRATOR_CHECK_TTL",
    default: 3_600_000,
    help: "TTL of the checks driven by Docker health and readiness; refreshed while the registrator runs",
    parse: parsers.duration({ minMs: 10_000, maxMs: 7 * 24 * 3_600_000 }),
  } satisfies Setting<number>,
  readyInterval: {
    flag: "ready-interval",
    env: "REGISTRATOR_READY_INTERVAL",
    default: 25,
    help: "longest pause between readiness probes of a starting container (SERVICE_READY_HTTP); right after its start the pauses are shorter: 1/8 of the time since the start, at least 2 ms",
    parse: parsers.duration({ minMs: 5, maxMs: 10_000 }),
  } satisfies Setting<number>,
  readyTimeout: {
    flag: "ready-timeout",
    env: "REGISTRATOR_READY_TIMEOUT",
    default: 30_000,
    help: "how long readiness probing of one start keeps trying",
    parse: parsers.duration({ minMs: 100, maxMs: 600_000 }),
  } satisfies Setting<number>,
  readyConcurrency: {
    flag: "ready-concurrency",
    env: "REGISTRATOR_READY_CONCURRENCY",
    default: 32,
    help: "containers probed for readiness at once",
    parse: parsers.int({ min: 1, max: 1000 }),
  } satisfies Setting<number>,
  retryMax: {
    flag: "retry-max",
    env: "REGISTRATOR_RETRY_MAX",
    default: 10_000,
    help: "longest wait between retries while Consul or Docker is unreachable",
    parse: parsers.duration({ minMs: 100, maxMs: 600_000 }),
  } satisfies Setting<number>,
  eventsCheck: {
    flag: "events-check",
    env: "REGISTRATOR_EVENTS_CHECK",
    default: 1000,
    help: "how often the Docker event stream is checked for a stall (a window of events it should have delivered); 0s: never",
    parse: (raw: string) => {
      const ms = parsers.duration({ maxMs: 60_000 })(raw);
      if (ms !== 0 && ms < 100) throw new Error(`${raw} is shorter than 100ms (0s turns the check off)`);
      return ms;
    },
  } satisfies Setting<number>,
  opsHost: {
    flag: "ops-host",
    env: "REGISTRATOR_OPS_HOST",
    default: "0.0.0.0",
    help: "address of the /health and /metrics endpoint",
    parse: parsers.string(),
  } satisfies Setting<string>,
  opsPort: {
    flag: "ops-port",
    env: "REGISTRATOR_OPS_PORT",
    default: 9101,
    help: "port of the /health and /metrics endpoint (0: any free port)",
    parse: parsers.port(),
  } satisfies Setting<number>,
  logLevel: {
    flag: "log-level",
    env: "REGISTRATOR_LOG_LEVEL",
    default: "info" as Level,
    help: "debug, info, warn or error",
    parse: parsers.oneOf(levels),
  } satisfies Setting<Level>,
};

export type RegistratorSettings = Values<typeof registratorSettings>;

/** Shown by --help where the default is computed at start-up. */
export const displayDefaults = { identity: "the Docker engine ID" };

/** Rules that involve more than one setting; throws a ConfigError naming the flag to fix. */
export function checkSettings(s: RegistratorSettings): void {
  checkConsulConnection(s); // TLS files and address, shared with the templater (lib/consul-client.ts)
  if (s.addressMode === "published" && !s.hostIp) {
    throw new ConfigError(
      "--host-ip (REGISTRATOR_HOST_IP) is required with --address-mode published: it is the address clients use to reach published ports",
      "host-ip",
    );
  }
  if (s.checkTtl <= 2 * s.resync) {
    throw new ConfigError(
      `invalid --check-ttl (REGISTRATOR_CHECK_TTL): must be more than twice --resync (${s.resync}ms), because checks are refreshed once per resync`,
      "check-ttl",
    );
  }
}
