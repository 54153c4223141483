// registrator: watches the Docker engine and keeps Consul's service instances equal
// to the running containers. Settings: services/registrator/README.md.

import { loadSettingsOrExit } from "../../../lib/config.ts";
import { checkConsulConnection } from "../../../lib/consul-client.ts";
import { createConsul } from "../../../lib/consul-library.ts";
import { createLogger, describeError } from "../../../lib/log.ts";
import { startOpsServer } from "../../../lib/ops-server.ts";
import { onShutdown } from "../../../lib/shutdown.ts";
import { ConsulRegistry } from "./consul/registry.ts";
import { DockerodeSource } from "./docker/source.ts";
import { createMetrics } from "./metrics.ts";
import { startRegistrator, type Registrator } from "./registrator.ts";
import { checkSettings, displayDefaults, registratorSettings } from "./settings.ts";

const settings = loadSettingsOrExit("registrator", registratorSettings, {
  displayDefaults,
  check: checkSettings,
});

const log = createLogger({ service: "registrator", level: settings.logLevel });
for (const warning of checkConsulConnection(settings)) log.warn(warning);
const shutdown = onShutdown(log);
const metrics = createMetrics();
const { consul, endpoint } = createConsul(settings);
let registrator: Registrator | undefined;

const ops = await startOpsServer({
  host: settings.opsHost,
  port: settings.opsPort,
  registry: metrics.registry,
  log,
  health: () => {
    if (!registrator) return { ok: false, phase: "waiting for the Docker engine" };
    const h = registrator.health();
    return { ok: h.consul && h.docker && h.synced, identity: registrator.identity, ...h };
  },
}).catch((err: unknown) => {
  log.error("cannot open the ops endpoint; is --ops-port free?", { port: settings.opsPort, err });
  process.exit(1);
});

log.info("connecting", { consul: endpoint.url, docker: settings.dockerHost });
try {
  registrator = await startRegistrator({
    docker: DockerodeSource.fromHost(settings.dockerHost),
    registry: new ConsulRegistry(consul),
    log,
    identity: settings.identity,
    mapping: {
      addressMode: settings.addressMode,
      network: settings.network,
      hostIp: settings.hostIp,
      explicit: settings.explicit,
      extraTags: settings.tags,
      labelFilter: settings.labelFilter,
      scopeNetwork: settings.scopeNetwork,
      checkTtlMs: settings.checkTtl,
    },
    resyncMs: settings.resync,
    retryMaxMs: settings.retryMax,
    ready: {
      intervalMs: settings.readyInterval,
      timeoutMs: settings.readyTimeout,
      concurrency: settings.readyConcurrency,
    },
    eventsCheckMs: settings.eventsCheck,
    metrics,
    signal: shutdown.signal,
  });
} catch (err) {
  if (!shutdown.signal.aborted) {
    log.error("registrator failed to start", { err: describeError(err) });
    process.exit(1);
  }
}

const stopAll = async () => {
  // Nothing is deregistered: the instances stay while the registrator restarts.
  await registrator?.stop();
  await ops.close();
  consul.destroy();
  log.info("stopped; registrations left in place");
  process.exit(0);
};
if (shutdown.signal.aborted) await stopAll();
else shutdown.signal.addEventListener("abort", () => void stopAll(), { once: true });
