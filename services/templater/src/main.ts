// The templater: follows Consul, renders nginx config from Handlebars templates, validates it
// with nginx -t and applies it atomically; in exec mode it also runs nginx. Settings: settings.ts
// and services/templater/README.md.

import { readFile } from "node:fs/promises";
import os from "node:os";
import { sleep } from "../../../lib/backoff.ts";
import { loadSettingsOrExit } from "../../../lib/config.ts";
import { ConsulTrust } from "../../../lib/consul-answer.ts";
import { checkConsulConnection, createConsulHttp } from "../../../lib/consul-client.ts";
import { createLogger, type Logger } from "../../../lib/log.ts";
import { json, startOpsServer, type OpsServer } from "../../../lib/ops-server.ts";
import { onShutdown } from "../../../lib/shutdown.ts";
import { ConfigStore } from "./apply/config-store.ts";
import {
  commandReloader,
  generationConfirmer,
  NginxSupervisor,
  nginxValidator,
  noReload,
  type NginxExit,
  type Reloader,
} from "./apply/nginx.ts";
import { DryRun, Transaction, type Applier } from "./apply/transaction.ts";
import { routeNetworks } from "./core/route-networks.ts";
import { buildStatus, renderStatusHtml } from "./core/status.ts";
import { Manager } from "./manager.ts";
import { createMetrics } from "./metrics.ts";
import {
  checkSettings,
  confirmUrlOf,
  displayDefaults,
  templaterSettings,
  type TemplaterSettings,
} from "./settings.ts";
import { consulCatalogApi, maxConsulSockets, nodeReadConcurrency } from "./watch/consul-api.ts";
import { ConsulCatalogWatcher } from "./watch/consul-watcher.ts";
import { checkToken, reportToken } from "./watch/token-check.ts";
import { watchTemplateFiles, type TemplateFileWatcher } from "./watch/template-files.ts";

function exitStatus(exit: NginxExit): number {
  if (exit.code !== null) return exit.code;
  const n = exit.signal ? os.constants.signals[exit.signal as NodeJS.Signals] : undefined;
  return n ? 128 + n : 1;
}

async function main(): Promise<void> {
  const settings: TemplaterSettings = loadSettingsOrExit("templater", templaterSettings, {
    displayDefaults,
    check: checkSettings,
  });
  // --dry prints renders on stdout, so its logs go to stderr.
  const log: Logger = createLogger({
    service: "templater",
    level: settings.logLevel,
    write: settings.dry ? (line) => process.stderr.write(line + "\n") : undefined,
  });
  for (const warning of checkConsulConnection(settings)) log.warn(warning);
  let supervisor: NginxSupervisor | undefined;
  const metrics = createMetrics({ nginxRunning: () => supervisor?.running ?? false });
  metrics.consulUp.set(0);

  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  let finishing = false;
  const finish = async (code: number) => {
    if (finishing) return;
    finishing = true;
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
    process.exit(code);
  };

  // Applying: --dry prints; otherwise a transaction on the output directory.
  let store: ConfigStore | undefined;
  let applier: Applier;
  const confirmer = generationConfirmer(confirmUrlOf(settings), settings.confirmTimeout);
  if (settings.dry) {
    applier = new DryRun((text) => process.stdout.write(text));
  } else {
    store = new ConfigStore({
      dir: settings.outputDir,
      main: settings.mainConfig,
      keep: settings.keepGenerations,
      log,
    });
    try {
      await store.init();
    } catch (err) {
      log.error("cannot use the output directory", { dir: settings.outputDir, err });
      process.exit(1);
    }
    let reloader: Reloader = noReload;
    if (settings.mode === "command" && settings.reloadCommand) {
      reloader = commandReloader(settings.reloadCommand, confirmer, log);
    } else if (settings.mode === "exec" && !settings.once) {
      supervisor = new NginxSupervisor({
        nginxBin: settings.nginxBin,
        confPath: store.liveMainPath,
        confirmer,
        confirmTimeoutMs: settings.confirmTimeout,
        log: log.child({ component: "nginx" }),
        onExit: (exit) => void finish(exitStatus(exit)),
      });
      reloader = supervisor;
    }
    applier = new Transaction({
      store,
      validator: nginxValidator(settings.nginxBin),
      reloader,
      metrics,
      log,
    });
  }

  const manager = new Manager({
    templates: settings.templates,
    readTemplate: (file) => readFile(file, "utf8"),
    applier,
    viewOptions: {
      routeTag: settings.routeTag,
      statuses: settings.statuses,
      networks: routeNetworks(settings.routeNetworks),
    },
    edge: {
      listenPort: settings.listenPort,
      opsPort: settings.opsPort,
      hostDomain: settings.hostDomain,
      routeTag: settings.routeTag,
    },
    wait: { minMs: settings.waitMin, maxMs: settings.waitMax },
    forgetAfterMs: settings.forgetAfter,
    hold: { graceMs: settings.restartGrace, panic: settings.panic },
    metrics,
    log,
  });
  /** Started with a config applied before (a restart): it serves while Consul is asked. */
  const restored = (store?.liveId ?? null) !== null;
  const templatesOk = await manager.loadTemplates();
  if (settings.once && !templatesOk) {
    log.error("--once: a template does not compile; nothing applied");
    process.exit(1);
  }

  const consul = createConsulHttp(settings, { maxSockets: maxConsulSockets });
  const { endpoint } = consul;
  cleanups.push(() => consul.destroy());
  const reach = new ConsulTrust(log.child({ component: "consul", addr: endpoint.url }), {
    onChange: (state) => {
      // A fresh edge that cannot read Consul still starts nginx, answering 503 (exec mode).
      if (state.kind !== "ok" && state.kind !== "unknown" && supervisor) manager.serveStandIn();
      metrics.consulUp.set(state.kind === "ok" ? 1 : 0);
      for (const kind of ["denied", "malformed", "unreachable"] as const)
        metrics.consulProblem.set({ kind }, state.kind === kind ? 1 : 0);
    },
    onProblem: (kind) => metrics.consulProblems.inc({ kind }),
  });
  const watcher = new ConsulCatalogWatcher({
    api: consulCatalogApi(consul),
    waitMs: settings.consulWait,
    floorMs: settings.consulMinInterval,
    retryInitialMs: 250,
    retryMaxMs: settings.consulRetryMax,
    concurrency: nodeReadConcurrency,
    reach,
    wanted: (tags) => tags.includes(settings.routeTag),
    log: log.child({ component: "consul" }),
    onSnapshot: (s) => manager.onSnapshot(s),
    onRequest: (endpoint, result) => metrics.consulRequests.inc({ endpoint, result }),
  });
  const controller = new AbortController();
  cleanups.push(() => controller.abort());

  process.on("SIGHUP", () => {
    log.info("SIGHUP: reading the templates again and retrying the current render");
    void manager.retry();
  });
  onShutdown(log, ["SIGTERM", "SIGINT", "SIGQUIT"], (signal) => {
    manager.stop();
    controller.abort();
    if (settings.once) return void finish(1);
    // Exec mode: nginx decides how long shutdown takes (QUIT is graceful); we exit with its status.
    if (supervisor?.stop(signal === "SIGINT" ? "SIGTERM" : signal)) return;
    void finish(0);
  });

  if (settings.once) {
    void watcher.run(controller.signal);
    const arrived = await Promise.race([
      manager.firstSnapshot.then(() => true),
      sleep(settings.onceTimeout).then(() => false),
    ]);
    if (!arrived) {
      log.error("--once: Consul did not answer in time; nothing applied", {
        timeoutMs: settings.onceTimeout,
      });
      return finish(1);
    }
    await manager.idle();
    const outcome = manager.lastOutcome;
    const ok = ["applied", "unchanged", "dry"].includes(outcome.result);
    log.info("--once done", { result: outcome.result, generation: applier.liveId });
    return finish(ok ? 0 : 1);
  }

  let ops: OpsServer | undefined;
  if (settings.opsPort > 0) {
    const status = () =>
      buildStatus({
        ...manager.state(),
        mode: settings.dry ? "dry" : settings.mode,
        consul: { address: endpoint.url, up: reach.up, ...reach.state },
        nginx: { running: supervisor ? supervisor.running : null },
        hostDomain: settings.hostDomain,
      });
    ops = await startOpsServer({
      host: settings.opsHost,
      port: settings.opsPort,
      registry: metrics.registry,
      log,
      health: () => {
        const m = manager.state();
        // exec: nginx runs; command: a config is live; dry: a render was printed
        const serving = supervisor ? supervisor.running : m.liveId !== null;
        return {
          // Serving a stand-in (Consul never read) is not healthy: nothing is routed.
          // Healthy once Consul was read (or after a restart with the last applied config).
          ok: serving && !manager.standInLive && (reach.everOk || restored),
          generation: m.liveId,
          consul: reach.up,
          consulState: reach.state,
          nginx: supervisor ? supervisor.running : undefined,
          templateErrors: m.templates.filter((t) => t.error).length,
          lastError: m.lastError,
        };
      },
      routes: {
        "/": () => ({ type: "text/html; charset=utf-8", body: renderStatusHtml(status()) }),
        "/status": () => json(status()),
      },
    });
    cleanups.push(() => ops?.close());
  }

  let files: TemplateFileWatcher | undefined;
  try {
    files = await watchTemplateFiles(
      settings.templates.map((t) => t.source),
      () => manager.templatesChanged(),
      log.child({ component: "templates" }),
    );
    cleanups.push(() => files?.close());
  } catch (err) {
    log.warn("cannot watch the template files; edits need a restart", { err });
  }

  // Exec mode after a restart: serve the last good config while Consul is asked.
  if (supervisor && store?.liveId) {
    const check = await nginxValidator(settings.nginxBin).validate(store.liveMainPath);
    if (check.ok) {
      log.info("starting nginx with the last applied config", { generation: store.liveId });
      await supervisor.reload(store.liveId).catch((err: Error) => log.warn("nginx start failed", { err }));
    } else {
      log.warn("the last applied config no longer passes nginx -t; waiting for a new render", {
        output: check.output,
      });
    }
  }

  log.info("templater running", {
    mode: settings.dry ? "dry" : settings.mode,
    consul: endpoint.url,
    routeTag: settings.routeTag,
    outputDir: settings.dry ? undefined : settings.outputDir,
    opsPort: ops?.port,
  });
  void checkToken(consul, controller.signal).then((t) =>
    reportToken(t, log.child({ component: "consul" }), (err) => reach.failed(err)),
  );
  await watcher.run(controller.signal);
}

main().catch((err: unknown) => {
  process.stderr.write(
    JSON.stringify({
      ts: new Date().toISOString(),
      level: "error",
      service: "templater",
      msg: "fatal",
      err: String(err),
    }) + "\n",
  );
  process.exit(1);
});
