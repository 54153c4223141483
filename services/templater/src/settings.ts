// Every templater setting, in one place: flag, environment variable, default, parser.
// services/templater/README.md documents each of them.

import path from "node:path";
import { ConfigError, parsers, type Setting, type Values } from "../../../lib/config.ts";
import { checkConsulConnection, consulSettings } from "../../../lib/consul-client.ts";
import { levels, type Level } from "../../../lib/log.ts";
import { healthStatuses, type HealthStatus } from "./core/catalog.ts";
import type { TemplateSpec } from "./core/render.ts";
import { parseNetworks } from "./core/route-networks.ts";

export const modes = ["exec", "command"] as const;
export type Mode = (typeof modes)[number];

export const upstreamModes = ["dynamic", "reload"] as const;
export type UpstreamMode = (typeof upstreamModes)[number];

/** `source:dest` pairs; dest is relative to a generation and may not leave it. */
export function parseTemplatePairs(raw: string): TemplateSpec[] {
  const specs = parsers
    .list()(raw)
    .map((pair) => {
      const at = pair.lastIndexOf(":");
      if (at <= 0 || at === pair.length - 1) {
        throw new Error(
          `"${pair}" is not source:dest (e.g. /etc/dockside/templates/nginx.conf.hbs:nginx.conf)`,
        );
      }
      const source = pair.slice(0, at);
      const dest = path.posix.normalize(pair.slice(at + 1));
      if (path.posix.isAbsolute(dest) || dest === ".." || dest.startsWith("../") || dest === ".") {
        throw new Error(
          `destination "${pair.slice(at + 1)}" must be a relative path inside the output directory`,
        );
      }
      return { source: path.resolve(source), dest };
    });
  if (specs.length === 0) throw new Error("at least one source:dest pair is needed");
  const dests = specs.map((s) => s.dest);
  const twice = dests.find((d, i) => dests.indexOf(d) !== i);
  if (twice) throw new Error(`two templates write ${twice}`);
  return specs;
}

function parseStatuses(raw: string): HealthStatus[] {
  const list = parsers.list()(raw);
  if (list.length === 0) throw new Error("name at least one status");
  for (const s of list) parsers.oneOf(healthStatuses)(s);
  return list as HealthStatus[];
}

function parseConfirmUrl(raw: string): string {
  const v = raw.trim();
  if (v === "auto" || v === "off") return v;
  const u = new URL(v); // throws "Invalid URL" with the input
  if (u.protocol !== "http:")
    throw new Error(`"${raw}": only http:// URLs (nginx on this host) are supported`);
  return v;
}

const templatesDir = "/etc/dockside/templates";

export const templaterSettings = {
  ...consulSettings,
  templates: {
    flag: "template",
    env: "TEMPLATER_TEMPLATES",
    default: parseTemplatePairs(
      `${templatesDir}/nginx.conf.hbs:nginx.conf,${templatesDir}/services.conf.hbs:services.conf`,
    ),
    help: "comma-separated source:dest pairs; dest is relative to the output directory",
    parse: parseTemplatePairs,
  } satisfies Setting<TemplateSpec[]>,
  outputDir: {
    flag: "output-dir",
    env: "TEMPLATER_OUTPUT_DIR",
    default: "/var/lib/dockside/nginx",
    help: "directory holding the generations and the `current` symlink (may be a bind mount)",
    parse: parsers.string(),
  } satisfies Setting<string>,
  mainConfig: {
    flag: "main-config",
    env: "TEMPLATER_MAIN_CONFIG",
    default: "nginx.conf",
    help: "the dest that is nginx's main config (checked with nginx -t, run by nginx)",
    parse: parsers.string(),
  } satisfies Setting<string>,
  keepGenerations: {
    flag: "keep-generations",
    env: "TEMPLATER_KEEP_GENERATIONS",
    default: 3,
    help: "generations kept on disk, the live one included",
    parse: parsers.int({ min: 1, max: 1000 }),
  } satisfies Setting<number>,
  routeTag: {
    flag: "route-tag",
    env: "TEMPLATER_ROUTE_TAG",
    default: "http",
    help: "only Consul services carrying this tag are routed",
    parse: parsers.string(),
  } satisfies Setting<string>,
  statuses: {
    flag: "statuses",
    env: "TEMPLATER_STATUSES",
    default: ["passing"] as HealthStatus[],
    help: "instance health statuses that get traffic (passing, warning, critical)",
    parse: parseStatuses,
  } satisfies Setting<HealthStatus[]>,
  routeNetworks: {
    flag: "route-networks",
    env: "TEMPLATER_ROUTE_NETWORKS",
    default: [] as string[],
    help: "comma-separated networks (CIDR) instance addresses must be in to be routed, e.g. 172.16.0.0/12; empty: any. Loopback, link-local, unspecified and multicast addresses are never routed",
    parse: parseNetworks,
  } satisfies Setting<string[]>,
  hostDomain: {
    flag: "host-domain",
    env: "TEMPLATER_HOST_DOMAIN",
    default: "localhost",
    help: "services are routed by host as <service>.<domain>; empty for <service> alone",
    parse: (raw: string) => {
      if (raw !== "" && !/^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(raw)) {
        throw new Error(`"${raw}" is not a DNS domain`);
      }
      return raw;
    },
  } satisfies Setting<string>,
  listenPort: {
    flag: "listen-port",
    env: "TEMPLATER_LISTEN_PORT",
    default: 8080,
    help: "port nginx listens on (passed to templates as edge.listenPort)",
    parse: parsers.int({ min: 1, max: 65535 }),
  } satisfies Setting<number>,
  forgetAfter: {
    flag: "forget-after",
    env: "TEMPLATER_FORGET_AFTER",
    default: 3_600_000,
    help: "a routed service that lost every instance keeps its routes, answering 503, this long (0s: drop them at once, 404)",
    parse: parsers.duration({ maxMs: 30 * 24 * 3_600_000 }),
  } satisfies Setting<number>,
  restartGrace: {
    flag: "restart-grace",
    env: "TEMPLATER_RESTART_GRACE",
    default: 35_000,
    help: "after Consul's index goes backwards (a restarted Consul), instances it no longer lists stay routed this long or until they are back (one registrator resync, 30s, plus margin; 0s: off)",
    parse: parsers.duration({ maxMs: 3_600_000 }),
  } satisfies Setting<number>,
  panic: {
    flag: "panic",
    env: "TEMPLATER_PANIC",
    default: true,
    help: "panic mode: when every instance of a service fails its checks at once (nodes alive), keep routing to the last routed set, with a warning",
    parse: parsers.bool(),
  } satisfies Setting<boolean>,
  waitMin: {
    flag: "wait-min",
    env: "TEMPLATER_WAIT_MIN",
    default: 100,
    help: "quiescence: render once Consul has been quiet this long (0s: render on every change)",
    parse: parsers.duration({ maxMs: 60_000 }),
  } satisfies Setting<number>,
  waitMax: {
    flag: "wait-max",
    env: "TEMPLATER_WAIT_MAX",
    default: 1000,
    help: "quiescence: but never later than this after the first change of a burst",
    parse: parsers.duration({ maxMs: 600_000 }),
  } satisfies Setting<number>,
  mode: {
    flag: "mode",
    env: "TEMPLATER_MODE",
    default: "exec" as Mode,
    help: "exec: run nginx as a child and reload it with SIGHUP; command: run --reload-command",
    parse: parsers.oneOf(modes),
  } satisfies Setting<Mode>,
  upstreams: {
    flag: "upstreams",
    env: "TEMPLATER_UPSTREAMS",
    default: "dynamic" as UpstreamMode,
    help: "dynamic: instance sets pushed into nginx shared memory (Lua balancer), reload only when routes change; reload: server lines in the config, every change reloads (stock nginx without Lua)",
    parse: parsers.oneOf(upstreamModes),
  } satisfies Setting<UpstreamMode>,
  controlPort: {
    flag: "control-port",
    env: "TEMPLATER_CONTROL_PORT",
    default: 9103,
    help: "dynamic: port of nginx's control listener on 127.0.0.1 (instance pushes; never public)",
    parse: parsers.int({ min: 1, max: 65535 }),
  } satisfies Setting<number>,
  controlUrl: {
    flag: "control-url",
    env: "TEMPLATER_CONTROL_URL",
    default: "auto",
    help: "dynamic: where the templater reaches nginx's control listener; auto: http://127.0.0.1:<control-port>",
    parse: parseConfirmUrl,
  } satisfies Setting<string>,
  luaPath: {
    flag: "lua-path",
    env: "TEMPLATER_LUA_PATH",
    default: "/etc/dockside/lua",
    help: "dynamic: directory holding dockside's Lua modules (passed to templates as edge.luaPath)",
    parse: parsers.string(),
  } satisfies Setting<string>,
  nginxBin: {
    flag: "nginx-bin",
    env: "TEMPLATER_NGINX_BIN",
    default: "nginx",
    help: "the nginx binary, for nginx -t and (exec mode) to run",
    parse: parsers.string(),
  } satisfies Setting<string>,
  reloadCommand: {
    flag: "reload-command",
    env: "TEMPLATER_RELOAD_COMMAND",
    default: "",
    help: "command mode: shell command that makes nginx load the new config",
    parse: parsers.string({ allowEmpty: true }),
  } satisfies Setting<string>,
  confirmUrl: {
    flag: "confirm-url",
    env: "TEMPLATER_CONFIRM_URL",
    default: "auto",
    help: "URL where nginx answers with its generation id, polled after each reload; auto: http://127.0.0.1:<listen-port>/_dockside/generation in exec mode, off in command mode",
    parse: parseConfirmUrl,
  } satisfies Setting<string>,
  confirmTimeout: {
    flag: "confirm-timeout",
    env: "TEMPLATER_CONFIRM_TIMEOUT",
    default: 10_000,
    help: "how long nginx may take to serve a new generation before the reload counts as failed",
    parse: parsers.duration({ minMs: 100, maxMs: 600_000 }),
  } satisfies Setting<number>,
  consulWait: {
    flag: "consul-wait",
    env: "TEMPLATER_CONSUL_WAIT",
    default: 60_000,
    help: "longest the catalog's long polls (catalog/services, health/state) wait for a change; the whole catalog is read again this often when nothing changed",
    parse: parsers.duration({ minMs: 1000, maxMs: 600_000 }),
  } satisfies Setting<number>,
  consulServiceWait: {
    flag: "consul-service-wait",
    env: "TEMPLATER_CONSUL_SERVICE_WAIT",
    default: 300_000,
    help: "longest a per-service long poll (--consul-service-watches) waits; each one waits a random half to all of it, and one that times out is asked again, so a longer wait means fewer requests and less garbage (1,000 watches at 60s: ~22 requests a second)",
    parse: parsers.duration({ minMs: 1000, maxMs: 600_000 }),
  } satisfies Setting<number>,
  consulMinInterval: {
    flag: "consul-min-interval",
    env: "TEMPLATER_CONSUL_MIN_INTERVAL",
    default: 50,
    help: "floor between the starts of two queries on one endpoint (rate limit under churn)",
    parse: parsers.duration({ maxMs: 60_000 }),
  } satisfies Setting<number>,
  consulServiceWatches: {
    flag: "consul-service-watches",
    env: "TEMPLATER_CONSUL_SERVICE_WATCHES",
    default: 128,
    help: "routed services that get a long poll of their own, so an instance change reaches nginx without reading the whole catalog (one Consul connection each: Consul allows 200 per client address unless limits.http_max_conns_per_client says more); 0: none",
    parse: parsers.int({ min: 0, max: 10_000 }),
  } satisfies Setting<number>,
  consulRetryMax: {
    flag: "consul-retry-max",
    env: "TEMPLATER_CONSUL_RETRY_MAX",
    default: 1_000,
    help: "longest pause between retries while Consul is unreachable or its answers cannot be used (backoff starts at 250ms)",
    parse: parsers.duration({ minMs: 250, maxMs: 600_000 }),
  } satisfies Setting<number>,
  once: {
    flag: "once",
    env: "TEMPLATER_ONCE",
    default: false,
    switch: true,
    help: "render, apply and exit (status 1 on failure); exec mode does not start nginx",
    parse: parsers.bool(),
  } satisfies Setting<boolean>,
  onceTimeout: {
    flag: "once-timeout",
    env: "TEMPLATER_ONCE_TIMEOUT",
    default: 30_000,
    help: "--once: give up (status 1) when Consul has not answered within this time",
    parse: parsers.duration({ minMs: 100, maxMs: 3_600_000 }),
  } satisfies Setting<number>,
  dry: {
    flag: "dry",
    env: "TEMPLATER_DRY",
    default: false,
    switch: true,
    help: "print renders to stdout (logs go to stderr) and touch nothing: no files, no nginx",
    parse: parsers.bool(),
  } satisfies Setting<boolean>,
  opsHost: {
    flag: "ops-host",
    env: "TEMPLATER_OPS_HOST",
    default: "0.0.0.0",
    help: "address of the ops endpoint (/health, /metrics, /status, status page at /)",
    parse: parsers.string(),
  } satisfies Setting<string>,
  opsPort: {
    flag: "ops-port",
    env: "TEMPLATER_OPS_PORT",
    default: 9102,
    help: "port of the ops endpoint (0: none)",
    parse: parsers.port(),
  } satisfies Setting<number>,
  logLevel: {
    flag: "log-level",
    env: "TEMPLATER_LOG_LEVEL",
    default: "info" as Level,
    help: "debug, info, warn or error",
    parse: parsers.oneOf(levels),
  } satisfies Setting<Level>,
};

export type TemplaterSettings = Values<typeof templaterSettings>;

/** How defaults that are not plain values read in --help. */
export const displayDefaults = {
  templates: `${templatesDir}/nginx.conf.hbs:nginx.conf,${templatesDir}/services.conf.hbs:services.conf`,
  restartGrace: "35s",
  waitMin: "100ms",
  waitMax: "1s",
  confirmTimeout: "10s",
  consulWait: "60s",
  consulServiceWait: "5m",
  consulMinInterval: "50ms",
  consulRetryMax: "1s",
  onceTimeout: "30s",
};

/** Checks that need several settings at once. Throws with a message naming the flags. */
export function checkSettings(s: TemplaterSettings): void {
  checkConsulConnection(s);
  if (s.mode === "command" && !s.reloadCommand && !s.once && !s.dry) {
    throw new ConfigError(
      "--mode command needs --reload-command (TEMPLATER_RELOAD_COMMAND)",
      "reload-command",
    );
  }
  if (!s.templates.some((t) => t.dest === path.posix.normalize(s.mainConfig))) {
    throw new ConfigError(
      `--main-config ${s.mainConfig} is not the dest of any --template; nginx -t needs the main config among the rendered files`,
      "main-config",
    );
  }
  if (s.waitMax > 0 && s.waitMax < s.waitMin) {
    throw new ConfigError("--wait-max is shorter than --wait-min", "wait-max");
  }
}

/** Where the control listener is reached (dynamic mode). */
export function controlUrlOf(s: TemplaterSettings): string {
  return s.controlUrl === "auto" || s.controlUrl === "off"
    ? `http://127.0.0.1:${s.controlPort}`
    : s.controlUrl;
}

/** The confirmation URL after resolving `auto`; null when off. */
export function confirmUrlOf(s: TemplaterSettings): string | null {
  if (s.confirmUrl === "off") return null;
  if (s.confirmUrl === "auto") {
    return s.mode === "exec" ? `http://127.0.0.1:${s.listenPort}/_dockside/generation` : null;
  }
  return s.confirmUrl;
}
