// demo-node: a small HTTP service that says which instance answered.

import os from "node:os";
import { loadSettingsOrExit } from "../../../lib/config.ts";
import { createLogger } from "../../../lib/log.ts";
import { Lifecycle } from "./lifecycle.ts";
import { startServer } from "./server.ts";
import { demoSettings } from "./settings.ts";

const settings = loadSettingsOrExit("demo-node", demoSettings);
const log = createLogger({ service: "demo-node" }, { name: settings.name });
const lifecycle = new Lifecycle(Date.now(), settings.slowStart);

// No top-level await: the bundle is CommonJS (scripts/build.ts), which starts sooner.
void startServer({
  name: settings.name,
  version: settings.version,
  instance: os.hostname(),
  latencyMs: settings.latency,
  errorRate: settings.errorRate,
  lifecycle,
  port: settings.port,
  keepAliveTimeoutMs: settings.keepAliveTimeout,
  drainDelayMs: settings.drainDelay,
  shutdownTimeoutMs: settings.shutdownTimeout,
  log,
}).then((server) => {
  // uptimeMs: since this process started, on Node's own clock (process.uptime reads no module;
  // `performance` would load perf_hooks first), so a scale-up's trace can tell the engine's
  // share of "start event → listening" from Node's (bench/lab-scaling.ts).
  log.info("listening", {
    port: server.port,
    slowStartMs: settings.slowStart,
    uptimeMs: Math.round(process.uptime() * 10_000) / 10,
  });
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, () => {
      log.info("shutting down", { signal });
      void server.shutdown().then((result) => {
        log.info("stopped", { result });
        process.exit(0);
      });
    });
  }
});
