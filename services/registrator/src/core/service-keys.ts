// Reads the registrator-compatible SERVICE_* settings of a container from its
// environment and labels (labels win), validates every value, and reports each
// value it cannot use as a Problem instead of passing it on.
//
//   SERVICE_NAME, SERVICE_ID, SERVICE_TAGS, SERVICE_IGNORE, SERVICE_NETWORK,
//   SERVICE_READY_HTTP, SERVICE_CHECK_HTTP, SERVICE_CHECK_HTTPS, SERVICE_CHECK_TCP,
//   SERVICE_CHECK_INTERVAL, SERVICE_CHECK_TIMEOUT, SERVICE_CHECK_DEREGISTER_AFTER,
//   SERVICE_<port>_<any of those>, and any other SERVICE_<KEY> → meta <key>.

import { parsers } from "../../../../lib/config.ts";
import { reservedMetaPrefix, type Problem } from "./types.ts";
import { hasControlChars, isValidId, isValidName, isValidTag, quote, suggest } from "./validate.ts";

export interface ServiceKeys {
  name?: string;
  id?: string;
  tags?: string[];
  ignore?: boolean;
  network?: string;
  readyHttp?: string;
  checkHttp?: string;
  checkHttps?: string;
  checkTcp?: boolean;
  checkIntervalMs?: number;
  checkTimeoutMs?: number;
  checkDeregisterAfterMs?: number;
  meta: Record<string, string>;
}

export interface ParsedKeys {
  general: ServiceKeys;
  /** Port number → the settings given as SERVICE_<port>_<KEY>. */
  ports: Map<number, ServiceKeys>;
  problems: Problem[];
}

export const prefix = "SERVICE_";

/** Stands in for a name that failed validation, so the instance is skipped (never renamed). */
export const invalidName = "\0invalid";

/** Limits for values that would make no sense (Consul raises intervals below 1s, and deregistration below 1m). */
export const limits = {
  intervalMs: { min: 1_000, max: 3_600_000 },
  timeoutMs: { min: 100, max: 300_000 },
  deregisterAfterMs: { min: 60_000, max: 30 * 24 * 3_600_000 },
  metaValueLength: 512,
  metaKeyLength: 128,
  pathLength: 1024,
};

const knownKeys = [
  "name",
  "id",
  "tags",
  "ignore",
  "network",
  "ready_http",
  "check_http",
  "check_https",
  "check_tcp",
  "check_interval",
  "check_timeout",
  "check_deregister_after",
] as const;
type Known = (typeof knownKeys)[number];

/** gliderlabs/registrator check kinds this registrator deliberately does not run. */
const unsupportedChecks = new Set([
  "check_script",
  "check_cmd",
  "check_ttl",
  "check_docker",
  "check_grpc",
  "check_grpc_use_tls",
  "check_initial_status",
  "check_tls_skip_verify",
  "check_udp",
]);

interface RawValue {
  value: string;
  /** How the user spelled it, for messages: label SERVICE_X or env SERVICE_X. */
  source: string;
}

const urlPathPattern = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*$/;
const metaKeyPattern = /^[a-z0-9_-]+$/;

function show(raw: RawValue): string {
  const v = raw.value.length > 80 ? `${raw.value.slice(0, 77)}...` : raw.value;
  return `${raw.source}=${quote(v)}`;
}

/** Collects SERVICE_* keys: environment first, labels over it. Keys are lower-cased after the prefix. */
function collect(env: Record<string, string>, labels: Record<string, string>): Map<string, RawValue> {
  const out = new Map<string, RawValue>();
  const add = (from: Record<string, string>, kind: string) => {
    for (const [key, value] of Object.entries(from)) {
      if (!key.startsWith(prefix) || key.length === prefix.length) continue;
      out.set(key.slice(prefix.length).toLowerCase(), { value, source: `${kind} ${key}` });
    }
  };
  add(env, "env");
  add(labels, "label");
  return out;
}

function parseDurationIn(
  raw: RawValue,
  range: { min: number; max: number },
  problems: Problem[],
): number | undefined {
  let ms: number;
  try {
    ms = parsers.duration()(raw.value);
  } catch (err) {
    problems.push({ effect: "dropped", message: `${show(raw)}: ${(err as Error).message}` });
    return undefined;
  }
  if (ms < range.min || ms > range.max) {
    problems.push({
      effect: "dropped",
      message: `${show(raw)} is outside ${range.min}ms..${range.max}ms; using the default`,
    });
    return undefined;
  }
  return ms;
}

function parseBool(raw: RawValue): boolean | undefined {
  try {
    return parsers.bool()(raw.value);
  } catch {
    return undefined;
  }
}

/**
 * A path on the container itself: "/…", never "//…" (a host to a URL parser), no "@"
 * (user info), no "\\", URL characters only.
 */
export function isCheckPath(value: string): boolean {
  return (
    value.length <= limits.pathLength &&
    urlPathPattern.test(value) &&
    !value.startsWith("//") &&
    !value.includes("@")
  );
}

function parsePath(raw: RawValue, problems: Problem[]): string | undefined {
  if (isCheckPath(raw.value)) return raw.value;
  problems.push({
    effect: "dropped",
    message: `${show(raw)} is not a URL path on the container (it must start with a single /, use URL characters only, and contain no @)`,
  });
  return undefined;
}

/** Applies one known key to `into`; adds a Problem when the value is unusable. */
function applyKnown(key: Known, raw: RawValue, into: ServiceKeys, problems: Problem[]): void {
  const v = raw.value.trim();
  if (v === "" && key !== "ignore") return; // registrator treats an empty value as unset
  switch (key) {
    case "name":
      if (isValidName(v)) {
        into.name = v;
        return;
      }
      // Never rename what the user named: the instance is skipped instead.
      into.name = invalidName;
      problems.push({
        effect: "skipped",
        message: `${show(raw)}: service names may use letters, digits, - and _ (at most 63, starting and ending with a letter or digit)`,
      });
      return;
    case "id":
      if (isValidId(v)) into.id = v;
      else
        problems.push({
          effect: "dropped",
          message: `${show(raw)}: IDs may use letters, digits and _ . : @ - (at most 128); using the default ID`,
        });
      return;
    case "tags": {
      const tags: string[] = [];
      for (const t of v.split(",").map((s) => s.trim())) {
        if (t === "") continue;
        if (isValidTag(t)) tags.push(t);
        else
          problems.push({
            effect: "dropped",
            message: `${raw.source}: tag ${quote(t.slice(0, 80))} dropped (no spaces, control characters, quotes, braces, ; \\ or $)`,
          });
      }
      into.tags = tags;
      return;
    }
    case "ignore": {
      const b = v === "" ? false : parseBool(raw);
      if (b === undefined) {
        problems.push({
          effect: "skipped",
          message: `${show(raw)} is not a boolean (use true or false); not registering, to be safe`,
        });
        into.ignore = true;
      } else into.ignore = b;
      return;
    }
    case "network":
      into.network = v;
      return;
    case "ready_http":
      into.readyHttp = parsePath({ ...raw, value: v }, problems);
      return;
    case "check_http":
      into.checkHttp = parsePath({ ...raw, value: v }, problems);
      return;
    case "check_https":
      into.checkHttps = parsePath({ ...raw, value: v }, problems);
      return;
    case "check_tcp": {
      const b = parseBool(raw);
      if (b === undefined)
        problems.push({ effect: "dropped", message: `${show(raw)} is not a boolean (use true or false)` });
      else into.checkTcp = b;
      return;
    }
    case "check_interval":
      into.checkIntervalMs = parseDurationIn({ ...raw, value: v }, limits.intervalMs, problems);
      return;
    case "check_timeout":
      into.checkTimeoutMs = parseDurationIn({ ...raw, value: v }, limits.timeoutMs, problems);
      return;
    case "check_deregister_after":
      into.checkDeregisterAfterMs = parseDurationIn({ ...raw, value: v }, limits.deregisterAfterMs, problems);
      return;
  }
}

/** A key that is not one of ours: meta, unless it is a check we do not run or looks like a typo. */
function applyOther(key: string, raw: RawValue, into: ServiceKeys, problems: Problem[]): void {
  if (unsupportedChecks.has(key)) {
    problems.push({
      effect: "dropped",
      message: `${raw.source} is not supported by this registrator (it runs HTTP, HTTPS and TCP checks, and Docker HEALTHCHECKs through a TTL check)`,
    });
    return;
  }
  const guess = suggest(key, knownKeys);
  if (key.startsWith("check_") || guess) {
    const hint = guess ? `; did you mean SERVICE_${guess.toUpperCase()}?` : "";
    problems.push({ effect: "dropped", message: `${raw.source} is not a known setting${hint}` });
    return;
  }
  if (
    !metaKeyPattern.test(key) ||
    key.length > limits.metaKeyLength ||
    key.startsWith("consul-") ||
    key.startsWith(reservedMetaPrefix)
  ) {
    problems.push({
      effect: "dropped",
      message: `${raw.source}: meta keys may use letters, digits, _ and - (at most ${limits.metaKeyLength}), and may not start with consul- or ${reservedMetaPrefix}`,
    });
    return;
  }
  if (raw.value.length > limits.metaValueLength || hasControlChars(raw.value)) {
    problems.push({
      effect: "dropped",
      message: `${raw.source}: meta values must be at most ${limits.metaValueLength} characters without control characters`,
    });
    return;
  }
  into.meta[key] = raw.value;
}

export function parseServiceKeys(env: Record<string, string>, labels: Record<string, string>): ParsedKeys {
  const general: ServiceKeys = { meta: {} };
  const ports = new Map<number, ServiceKeys>();
  const problems: Problem[] = [];
  for (const [key, raw] of collect(env, labels)) {
    let target = general;
    let rest = key;
    // A first part with a digit or a sign is meant as a port: SERVICE_-1_NAME is an error, not meta.
    const portPart = /^([+-]?\d[^_]*|[+-][^_]*)_(.+)$/.exec(key);
    if (portPart) {
      const port = /^\d+$/.test(portPart[1]!) ? Number(portPart[1]) : NaN;
      if (!(port >= 1 && port <= 65535)) {
        problems.push({
          effect: "dropped",
          message: `${raw.source}: "${portPart[1]}" is not a port number (expected SERVICE_<port>_<KEY>)`,
        });
        continue;
      }
      rest = portPart[2]!;
      target = ports.get(port) ?? { meta: {} };
      ports.set(port, target);
    }
    if ((knownKeys as readonly string[]).includes(rest)) applyKnown(rest as Known, raw, target, problems);
    else applyOther(rest, raw, target, problems);
  }
  return { general, ports, problems };
}

/** The settings for one port: SERVICE_<port>_<KEY> over SERVICE_<KEY>. */
export function keysForPort(parsed: ParsedKeys, port: number): ServiceKeys {
  const own = parsed.ports.get(port);
  if (!own) return parsed.general;
  const merged: ServiceKeys = { ...parsed.general, meta: { ...parsed.general.meta, ...own.meta } };
  for (const [k, v] of Object.entries(own) as [keyof ServiceKeys, unknown][]) {
    if (k !== "meta" && v !== undefined) (merged as unknown as Record<string, unknown>)[k] = v;
  }
  return merged;
}
