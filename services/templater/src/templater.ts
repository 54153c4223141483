// startTemplater(): the whole templater in-process (as the registrator's startRegistrator()):
// metrics, the apply side (transaction, nginx, the data plane), the manager, the Consul watcher,
// the ops endpoint and the template watcher, wired together. main.ts adds settings, signals and
// the process's exit; tests and benchmarks call this directly.

import { readFile } from "node:fs/promises";
import { ConsulTrust } from "../../../lib/consul-answer.ts";
import { checkConsulConnection, createConsulHttp } from "../../../lib/consul-client.ts";
import type { Logger } from "../../../lib/log.ts";
import { json, startOpsServer, type OpsServer } from "../../../lib/ops-server.ts";
import { ConfigStore } from "./apply/config-store.ts";
import { cachedFigures, controlClient } from "./apply/control-client.ts";
import { DataPlane, pushingReloader } from "./apply/data-plane.ts";
import {
  commandReloader,
  exitStatus,
  generationConfirmer,
  NginxSupervisor,
  nginxValidator,
  nginxPidFile,
  noReload,
  resumeNginx,
  type Reloader,
} from "./apply/nginx.ts";
import { DryRun, Transaction, type Applier } from "./apply/transaction.ts";
import { routeNetworks } from "./core/route-networks.ts";
import { buildHealth, buildStatus, renderStatusHtml } from "./core/status.ts";
import { Manager } from "./manager.ts";
import { createMetrics, type Metrics } from "./metrics.ts";
import { recorderFor } from "./outcomes.ts";
import { confirmUrlOf, controlUrlOf, type TemplaterSettings } from "./settings.ts";
import { consulCatalogApi, maxConsulSockets, nodeReadConcurrency } from "./watch/consul-api.ts";
import { ConsulCatalogWatcher } from "./watch/consul-watcher.ts";
import { checkToken, reportToken } from "./watch/token-check.ts";
import { watchTemplateFiles, type TemplateFileWatcher } from "./watch/template-files.ts";

/** A start-up failure: the message to log and the exit status main should use. */
export class StartError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "StartError";
    this.exitCode = exitCode;
  }
}

export interface TemplaterOptions {
  settings: TemplaterSettings;
  log: Logger;
  /** Exec mode: nginx exited (status as a process exit code). */
  onNginxExit?: (code: number) => void;
  /** --dry: where renders are printed; default stdout. */
  print?: (text: string) => void;
}

export interface Templater {
  manager: Manager;
  applier: Applier;
  metrics: Metrics;
  supervisor: NginxSupervisor | undefined;
  dataPlane: DataPlane | undefined;
  /** The ops endpoint's port (0: none). */
  opsPort: number;
  consulUrl: string;
  /** The Consul watch; resolves once stopped. */
  watching: Promise<void>;
  /** Stops watching and closes everything it opened (nginx keeps running; see stopNginx). */
  stop(): Promise<void>;
  /** Exec mode: forwards a stop signal to nginx; false when nginx is not running. */
  stopNginx(signal: NodeJS.Signals): boolean;
}

export async function startTemplater(o: TemplaterOptions): Promise<Templater> {
  const { settings, log } = o;
  for (const warning of checkConsulConnection(settings)) log.warn(warning);
  let supervisor: NginxSupervisor | undefined;
  // Dynamic upstreams: instance sets go to nginx's control listener, not into the config.
  const dynamic = settings.upstreams === "dynamic";
  const control = dynamic && !settings.dry ? controlClient(controlUrlOf(settings)) : undefined;
  const figures = control ? cachedFigures(control) : undefined;
  const metrics = createMetrics({
    nginxRunning: () => supervisor?.running ?? false,
    instanceFigures: figures,
  });
  metrics.consulUp.set(0);

  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  const close = async () => {
    for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => {});
  };

  const dataPlane = control
    ? new DataPlane({
        client: control,
        log: log.child({ component: "sets" }),
        isReady: () => (supervisor ? supervisor.running : !settings.once),
        persistPath: settings.dry ? undefined : `${settings.outputDir}/.dockside-sets.json`,
        onPush: (outcome, since) => recorderFor(metrics).push(outcome, since),
      })
    : undefined;
  if (control) cleanups.push(() => control.close());
  if (dataPlane)
    cleanups.push(
      () => dataPlane.stop(),
      () => dataPlane.flush(),
    );
  if (dataPlane && (await dataPlane.load()))
    log.info("instance sets from the last run loaded; pushed when nginx starts");

  // Applying: --dry prints; otherwise a transaction on the output directory.
  let store: ConfigStore | undefined;
  let applier: Applier;
  let startReloader: Reloader | undefined;
  const confirmer = generationConfirmer(confirmUrlOf(settings), settings.confirmTimeout);
  if (settings.dry) {
    applier = new DryRun(o.print ?? ((text) => process.stdout.write(text)));
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
      await close();
      throw new StartError(`cannot use the output directory ${settings.outputDir}`, 1, { cause: err });
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
        onExit: (exit) => o.onNginxExit?.(exitStatus(exit)),
      });
      reloader = supervisor;
    }
    if (dataPlane && reloader !== noReload) {
      reloader = pushingReloader(reloader, dataPlane, () => (supervisor ? supervisor.running : true));
    }
    startReloader = reloader;
    applier = new Transaction({
      store,
      validator: nginxValidator(settings.nginxBin),
      reloader,
      metrics,
      log,
    });
  }

  const manager = new Manager({
    liveRoutes: (await store?.liveRoutes()) ?? [],
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
      dynamic,
      controlPort: settings.controlPort,
      luaPath: settings.luaPath,
    },
    dataPlane,
    wait: { minMs: settings.waitMin, maxMs: settings.waitMax },
    forgetAfterMs: settings.forgetAfter,
    hold: { graceMs: settings.restartGrace, panic: settings.panic },
    metrics,
    log,
  });
  const restored = (store?.liveId ?? null) !== null;
  const templatesOk = await manager.loadTemplates();
  if (settings.once && !templatesOk) {
    await close();
    throw new StartError("--once: a template does not compile; nothing applied", 1);
  }

  const consul = createConsulHttp(settings, { maxSockets: maxConsulSockets + settings.consulServiceWatches });
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
    serviceWatches: settings.consulServiceWatches,
    serviceWaitMs: settings.consulServiceWait,
    onService: (a, at) => manager.onService(a, at),
    onRequest: (endpoint, result) => metrics.consulRequests.inc({ endpoint, result }),
  });

  const controller = new AbortController();
  cleanups.push(() => controller.abort());
  let ops: OpsServer | undefined;
  if (settings.opsPort > 0 && !settings.once) {
    const status = async () =>
      buildStatus({
        figures: figures
          ? new Map((await figures().catch(() => [])).map((f) => [`${f.upstream} ${f.endpoint}`, f]))
          : undefined,
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
      health: () =>
        buildHealth({
          state: manager.state(),
          degraded: manager.degraded(),
          standInLive: manager.standInLive,
          nginxServing: supervisor?.serving,
          consul: { up: reach.up, everOk: reach.everOk, state: reach.state },
          restored,
        }),
      routes: {
        "/": async () => ({ type: "text/html; charset=utf-8", body: renderStatusHtml(await status()) }),
        "/status": async () => json(await status()),
      },
    });
    cleanups.push(() => ops?.close());
  }

  let files: TemplateFileWatcher | undefined;
  if (!settings.once)
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

  // Exec mode: adopt an nginx that outlived a crash, or start one with the last good config.
  if (supervisor && store) {
    await resumeNginx({
      supervisor,
      pidFile: nginxPidFile,
      liveId: store.liveId,
      liveMainPath: store.liveMainPath,
      confirmUrl: confirmUrlOf(settings),
      validator: nginxValidator(settings.nginxBin),
      starter: startReloader ?? supervisor,
      log,
    });
  }

  log.info("templater running", {
    mode: settings.dry ? "dry" : settings.mode,
    consul: endpoint.url,
    routeTag: settings.routeTag,
    outputDir: settings.dry ? undefined : settings.outputDir,
    opsPort: ops?.port,
  });

  // Last: nginx has been adopted or started with the last good config before any render.
  void checkToken(consul, controller.signal).then((t) =>
    reportToken(t, log.child({ component: "consul" }), (err) => reach.failed(err)),
  );
  const watching = watcher.run(controller.signal);
  return {
    manager,
    applier,
    metrics,
    supervisor,
    dataPlane,
    opsPort: ops?.port ?? 0,
    consulUrl: endpoint.url,
    watching,
    stop: async () => {
      manager.stop();
      await close();
    },
    stopNginx: (signal) => supervisor?.stop(signal) ?? false,
  };
}
