// Every demo-node setting, in one place: flag, environment variable, default.

import { parsers, type Setting } from "../../../lib/config.ts";

export const demoSettings = {
  name: {
    flag: "name",
    env: "DEMO_NAME",
    default: "demo",
    help: "service name this instance reports",
    parse: parsers.string(),
  } satisfies Setting<string>,
  version: {
    flag: "version",
    env: "DEMO_VERSION",
    default: "1",
    help: "version string this instance reports",
    parse: parsers.string(),
  } satisfies Setting<string>,
  port: {
    flag: "port",
    env: "PORT",
    default: 3000,
    help: "HTTP port",
    parse: parsers.port(),
  } satisfies Setting<number>,
  latency: {
    flag: "latency",
    env: "DEMO_LATENCY",
    default: 0,
    help: "artificial latency added to every request except /healthz and /readyz, e.g. 50ms",
    parse: parsers.duration({ maxMs: 60_000 }),
  } satisfies Setting<number>,
  errorRate: {
    flag: "error-rate",
    env: "DEMO_ERROR_RATE",
    default: 0,
    help: "fraction of requests (0..1) answered 500, except /healthz and /readyz",
    parse: parsers.number({ min: 0, max: 1 }),
  } satisfies Setting<number>,
  slowStart: {
    flag: "slow-start",
    env: "DEMO_SLOW_START",
    default: 0,
    help: "time after start before /readyz answers 200, e.g. 5s",
    parse: parsers.duration({ maxMs: 600_000 }),
  } satisfies Setting<number>,
  drainDelay: {
    flag: "drain-delay",
    env: "DEMO_DRAIN_DELAY",
    default: 1000,
    help: "after SIGTERM, keep serving (readiness failing) this long so the edge can take the instance out of rotation",
    parse: parsers.duration({ maxMs: 600_000 }),
  } satisfies Setting<number>,
  shutdownTimeout: {
    flag: "shutdown-timeout",
    env: "DEMO_SHUTDOWN_TIMEOUT",
    default: 5000,
    help: "after the drain delay, how long in-flight requests may take before the process exits anyway",
    parse: parsers.duration({ maxMs: 600_000 }),
  } satisfies Setting<number>,
  keepAliveTimeout: {
    flag: "keepalive-timeout",
    env: "DEMO_KEEPALIVE_TIMEOUT",
    default: 65_000,
    help: "idle keep-alive timeout; longer than the edge's upstream keep-alive so nginx always closes first",
    parse: parsers.duration({ minMs: 1000, maxMs: 600_000 }),
  } satisfies Setting<number>,
};

export type DemoSettings = { [K in keyof typeof demoSettings]: (typeof demoSettings)[K]["default"] };
