// The manager ties watching, rendering and applying together, knowing little of each:
// snapshots come in (from the Consul watcher), template texts come in (from the file watcher),
// a quiescence timer coalesces them, and one render at a time goes to the applier.

import type { Logger } from "../../../lib/log.ts";
import { Backoff, sleep } from "../../../lib/backoff.ts";
import type { DataPlane } from "./apply/data-plane.ts";
import type { Applier, ApplyOutcome } from "./apply/transaction.ts";
import type { CatalogSnapshot, ServiceAnswer } from "./core/catalog.ts";
import { Quiescence } from "./core/quiescence.ts";
import {
  compileTemplate,
  generationPlaceholder,
  renderAll,
  seal,
  TemplateError,
  type CompiledTemplate,
  type EdgeContext,
  type TemplateSpec,
} from "./core/render.ts";
import type { ManagerState } from "./core/status.ts";
import { instanceSets, routeKeys, routesOnly, type BadWeight } from "./core/instance-sets.ts";
import { Recurring } from "./core/recurring.ts";
import { RememberedServices } from "./core/remembered.ts";
import { Holder } from "./core/hold.ts";
import {
  buildView,
  patchService,
  type BuiltView,
  type Reject,
  type View,
  type ViewOptions,
} from "./core/view.ts";
import type { Metrics } from "./metrics.ts";
import { recorderFor } from "./outcomes.ts";

export interface ManagerOptions {
  templates: readonly TemplateSpec[];
  readTemplate: (file: string) => Promise<string>;
  applier: Applier;
  viewOptions: ViewOptions;
  /** How long a routed service that lost every instance keeps its routes (answering 503); 0: not at all. */
  forgetAfterMs?: number;
  /** core/hold.ts: restart grace (ms; 0: none) and panic mode; default none and off. */
  hold?: { graceMs: number; panic: boolean };
  edge: EdgeContext;
  wait: { minMs: number; maxMs: number };
  metrics: Metrics;
  log: Logger;
  /**
   * Dynamic upstreams: templates are rendered with the instance lists left out (a change of
   * instances alone cannot change the render, so it never reloads), and the instance sets go
   * to nginx through the data plane, at once.
   */
  dataPlane?: DataPlane;
  /**
   * Services the live generation routes (from its routes manifest): after a restart they are
   * remembered as if just seen, so a service with no instance keeps its 503 route and the first
   * render equals the live one.
   */
  liveRoutes?: readonly string[];
  /** Backoff for retrying an apply that failed for a reason outside the render (disk full, permissions, a failed reload). */
  retry?: { initialMs: number; maxMs: number };
}

/** Failures that may pass by themselves, so the same render is tried again (nginx -t refusing it will not). */
const transientStages = new Set(["write", "swap", "reload"]);

export type RunOutcome = ApplyOutcome | { result: "render-failed"; message: string } | { result: "no-data" };

interface TemplateState {
  spec: TemplateSpec;
  text: string | undefined;
  good: CompiledTemplate | undefined;
  error: TemplateError | undefined;
}

export class Manager {
  readonly #o: ManagerOptions;
  readonly #templates: TemplateState[];
  readonly #quiescence: Quiescence;
  readonly #remembered: RememberedServices;
  #built: BuiltView | undefined;
  /** The last view as the catalog said it (before holding), and when its change was seen. */
  #raw: { built: BuiltView; observedAt: number } | undefined;
  #indexResetAt: number | undefined;
  /** What the last render saw, as comparable strings (core/instance-sets.ts routeKeys in dynamic mode). */
  #viewKey: readonly string[] = [];
  #pendingSince: number | undefined;
  #running: Promise<RunOutcome> | undefined;
  #rerun = false;
  /** Unsafe values and unusable weights, each logged once while it lasts. */
  readonly #rejects = new Recurring<Reject>((r) => r.key);
  readonly #badWeights = new Recurring<BadWeight>((b) => `${b.service}\u0000${b.instance}\u0000${b.reason}`);
  #liveView: View | undefined;
  #liveSince: string | null = null;
  #lastError: { at: string; stage: string; message: string } | null = null;
  #firstSnapshot: () => void = () => {};
  #loading: Promise<boolean> = Promise.resolve(true);
  #lastOutcome: RunOutcome = { result: "no-data" };
  readonly #retryBackoff: Backoff;
  #retryTimer: NodeJS.Timeout | undefined;
  /** core/hold.ts, with its state from snapshot to snapshot; undefined: no hold. */
  readonly #holder: Holder | undefined;
  #graceTimer: NodeJS.Timeout | undefined;
  /** A fresh edge that cannot read Consul renders a stand-in config answering 503 (see render.ts). */
  #standIn = false;
  #standInLive = false;
  /** Resolves when the first snapshot from Consul has arrived. */
  readonly firstSnapshot: Promise<void>;

  constructor(options: ManagerOptions) {
    this.#o = options;
    this.#remembered = new RememberedServices(options.forgetAfterMs ?? 0);
    this.#remembered.seen(options.liveRoutes ?? [], Date.now());
    this.#holder = options.hold ? new Holder(options.hold) : undefined;
    this.#retryBackoff = new Backoff(options.retry ?? { initialMs: 250, maxMs: 10_000 });
    this.#templates = options.templates.map((spec) => ({
      spec,
      text: undefined,
      good: undefined,
      error: undefined,
    }));
    this.#quiescence = new Quiescence({
      minMs: options.wait.minMs,
      maxMs: options.wait.maxMs,
      fire: () => void this.run(),
    });
    this.firstSnapshot = new Promise((resolve) => (this.#firstSnapshot = resolve));
  }

  /** Reads and compiles every template; true when all compiled (a broken one keeps its last good version). */
  loadTemplates(): Promise<boolean> {
    this.#loading = this.#loading.then(() => this.#load());
    return this.#loading;
  }

  async #load(): Promise<boolean> {
    let changed = false;
    for (const t of this.#templates) {
      let text: string;
      try {
        text = await this.#o.readTemplate(t.spec.source);
      } catch (err) {
        const message = `cannot read template: ${(err as Error).message}`;
        if (t.error?.message !== `${t.spec.source}: ${message}`) {
          t.error = new TemplateError(t.spec.source, undefined, message);
          t.text = undefined;
          this.#o.log.error("template unreadable; its last good version stays in use", {
            file: t.spec.source,
            error: message,
          });
        }
        continue;
      }
      if (text === t.text) continue;
      t.text = text;
      try {
        t.good = compileTemplate(t.spec, text);
        if (t.error) this.#o.log.info("template fixed", { file: t.spec.source });
        t.error = undefined;
        changed = true;
      } catch (err) {
        t.error = err as TemplateError;
        this.#o.log.error("template does not compile; its last good version stays in use", {
          file: t.error.file,
          line: t.error.line,
          error: t.error.message,
        });
      }
    }
    this.#o.metrics.templateErrors.set(this.#templates.filter((t) => t.error).length);
    if (changed && this.#built) this.#quiescence.change();
    return this.#templates.every((t) => t.good && !t.error);
  }

  /** A template file (or its directory) changed on disk. */
  templatesChanged(): void {
    void this.loadTemplates();
  }

  onSnapshot(snapshot: CatalogSnapshot): void {
    const t0 = performance.now();
    const now = Date.now();
    this.#indexResetAt = snapshot.indexResetAt;
    const raw = buildView(snapshot, { ...this.#o.viewOptions, retain: this.#remembered.retained(now) });
    this.#accept(raw, snapshot.observedAt, t0, now);
  }

  /**
   * One service as its own watch read it, newer than the last snapshot: rebuilt alone and
   * applied like a snapshot (at the cost of one service). False when it needs a whole snapshot
   * (none yet, or the answer shows a node's health changing).
   */
  onService(answer: ServiceAnswer, observedAt: number): boolean {
    if (!this.#raw) return false;
    const t0 = performance.now();
    const now = Date.now();
    const raw = patchService(this.#raw.built, answer.name, answer, {
      ...this.#o.viewOptions,
      retain: this.#remembered.retained(now),
    });
    if (!raw) return false;
    this.#accept(raw, observedAt, t0, now);
    return true;
  }

  /** A new view as the catalog says it (before holding): routes, sets, metrics, logs. */
  #accept(raw: BuiltView, observedAt: number, t0: number, now: number): void {
    this.#raw = { built: raw, observedAt };
    const built = this.#hold(raw, now);
    const present: string[] = [];
    for (const s of built.catalog.services) if (s.instances.length > 0) present.push(s.name);
    this.#remembered.seen(present, now);
    this.#o.metrics.viewSeconds.observe((performance.now() - t0) / 1000);
    for (const r of this.#rejects.fresh(built.rejects)) {
      this.#o.log.warn("value from Consul left out: not safe in nginx config", {
        consulService: r.service,
        instance: r.instance,
        field: r.field,
        value: r.value,
        reason: r.reason,
      });
    }
    const { metrics } = this.#o;
    let withInstances = 0;
    let instances = 0;
    for (const s of built.view.services) {
      if (s.instances.length > 0) withInstances++;
      instances += s.instances.length;
    }
    metrics.services.set({ state: "with_instances" }, withInstances);
    metrics.services.set({ state: "empty" }, built.view.services.length - withInstances);
    metrics.instances.set(instances);
    metrics.droppedValues.set(built.rejects.length);
    const plane = this.#o.dataPlane;
    const key = plane ? routeKeys(built.view.services) : [JSON.stringify(built.view)];
    const first = this.#built === undefined;
    this.#built = built;
    if (plane) {
      const { sets, badWeights } = instanceSets(built.view);
      for (const b of this.#badWeights.fresh(badWeights)) {
        this.#o.log.warn("instance weight not usable; weight 1 is used", {
          consulService: b.service,
          instance: b.instance,
          reason: b.reason,
        });
      }
      plane.update(sets, observedAt);
    }
    if (!first && key.length === this.#viewKey.length && key.every((k, i) => k === this.#viewKey[i])) return;
    this.#viewKey = key;
    this.#pendingSince ??= observedAt;
    if (first) this.#firstSnapshot();
    this.#quiescence.change();
  }

  /** core/hold.ts on the new view: what to route when the catalog says less than it should. */
  #hold(built: BuiltView, now: number): BuiltView {
    const { metrics, log } = this.#o;
    if (!this.#holder) return built;
    const r = this.#holder.next({
      routed: built.view,
      catalog: built.catalog,
      nodesDown: new Set(built.nodesDown),
      now,
      indexResetAt: this.#indexResetAt,
    });
    clearTimeout(this.#graceTimer);
    if (r.graceEndsAt !== undefined) {
      // Look again when the grace ends, even if Consul says nothing more.
      this.#graceTimer = setTimeout(
        () => this.#raw && this.#accept(this.#raw.built, this.#raw.observedAt, performance.now(), Date.now()),
        Math.max(0, r.graceEndsAt - now) + 10,
      );
      this.#graceTimer.unref();
    }
    if (r.heldChanged) {
      for (const h of r.held) {
        log.warn(
          h.reason === "panic"
            ? "every instance of the service fails its checks at once; routing to the last routed set (panic mode)"
            : "Consul restarted: instances it no longer lists stay routed until they are back or the grace period ends",
          {
            consulService: h.service,
            reason: h.reason,
            instances: h.instances.length,
            graceEndsAt: r.graceEndsAt,
          },
        );
      }
      if (r.held.length === 0) log.info("no instance held any more: routing what the catalog says");
    }
    for (const reason of ["consul-restarted", "panic"] as const) {
      metrics.heldInstances.set(
        { reason },
        r.held.filter((h) => h.reason === reason).reduce((n, h) => n + h.instances.length, 0),
      );
    }
    return { ...built, view: r.view };
  }

  /** Renders and applies now (one run at a time; a call during a run schedules one more). */
  run(): Promise<RunOutcome> {
    if (this.#running) {
      this.#rerun = true;
      return this.#running;
    }
    this.#running = this.#runLoop().finally(() => (this.#running = undefined));
    return this.#running;
  }

  /** Waits until no run is in progress or scheduled. */
  async idle(): Promise<void> {
    while (this.#running || this.#quiescence.pending) {
      await (this.#running ?? sleep(10));
    }
  }

  /** The result of the last render/apply. */
  get lastOutcome(): RunOutcome {
    return this.#lastOutcome;
  }

  async #runLoop(): Promise<RunOutcome> {
    do {
      this.#rerun = false;
      this.#lastOutcome = await this.#runOnce();
    } while (this.#rerun);
    this.#scheduleRetry(this.#lastOutcome);
    return this.#lastOutcome;
  }

  /** A transient apply failure is retried with backoff, without waiting for a change. */
  #scheduleRetry(outcome: RunOutcome): void {
    if (outcome.result !== "failed" || !transientStages.has(outcome.stage)) {
      if (outcome.result !== "failed") this.#retryBackoff.reset();
      return;
    }
    if (this.#retryTimer || this.#stopped) return;
    const delay = this.#retryBackoff.next();
    this.#o.log.info("retrying the failed apply", { stage: outcome.stage, inMs: delay });
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#o.applier.forgetFailure?.();
      void this.run();
    }, delay);
    this.#retryTimer.unref();
  }

  #stopped = false;

  /** Why the edge is degraded now (it may still serve): the last apply failed, a template is broken. */
  degraded(): string[] {
    const out: string[] = [];
    if (this.#lastError)
      out.push(`last apply failed at ${this.#lastError.stage}: ${this.#lastError.message}`);
    for (const t of this.#templates) if (t.error) out.push(`template ${t.spec.source}: ${t.error.message}`);
    const push = this.#o.dataPlane?.lastError;
    if (push) out.push(`instance sets not pushed: ${push}`);
    return out;
  }

  async #runOnce(): Promise<RunOutcome> {
    const { metrics, log, applier } = this.#o;
    const standIn = !this.#built && this.#standIn;
    const built: BuiltView | undefined =
      this.#built ??
      (standIn
        ? { view: { services: [] }, catalog: { services: [] }, rejects: [], nodesDown: [] }
        : undefined);
    if (!built) return { result: "no-data" };
    const edge = standIn ? { ...this.#o.edge, consulUnavailable: true } : this.#o.edge;
    const since = this.#pendingSince;
    this.#pendingSince = undefined;

    const t0 = performance.now();
    let generation;
    try {
      const missing = this.#templates.find((t) => !t.good);
      if (missing) throw missing.error ?? new TemplateError(missing.spec.source, undefined, "not loaded");
      const files = renderAll(
        this.#templates.map((t) => t.good!),
        {
          services: this.#o.dataPlane ? routesOnly(built.view.services) : built.view.services,
          edge,
          generation: generationPlaceholder,
        },
      );
      generation = { ...seal(files), routes: built.view.services.map((s) => s.name) };
    } catch (err) {
      const message = (err as Error).message;
      recorderFor(metrics).renderFailed();
      this.#lastError = { at: new Date().toISOString(), stage: "render", message };
      log.error("render failed; the live config stays", { error: message });
      return { result: "render-failed", message };
    }
    const renderMs = performance.now() - t0;
    recorderFor(metrics).rendered(renderMs);

    const outcome = await applier.apply(generation);
    const applyMs = performance.now() - t0 - renderMs;
    recorderFor(metrics).run(outcome.result, applyMs, since);
    const now = new Date();
    switch (outcome.result) {
      case "unchanged":
        this.#standInLive = standIn;
        this.#liveView = built.view;
        this.#lastError = null;
        log.debug("render identical to the live config; nothing written, no reload", {
          generation: generation.id,
        });
        break;
      case "applied":
      case "dry":
        this.#standInLive = standIn;
        this.#liveView = built.view;
        this.#liveSince = now.toISOString();
        this.#lastError = null;
        log.info(outcome.result === "dry" ? "render printed" : "config applied", {
          generation: generation.id,
          services: built.view.services.length,
          renderMs: Math.round(renderMs * 10) / 10,
          ...(outcome.result === "applied"
            ? {
                validateMs: Math.round(outcome.validateMs),
                reloadMs: Math.round(outcome.reloadMs),
                applyMs: Math.round(applyMs),
              }
            : {}),
          ...(since !== undefined ? { sinceChangeMs: Date.now() - since } : {}),
        });
        break;
      case "failed":
        if (outcome.repeated) {
          log.debug("same render as the last one that failed; waiting for a change", {
            generation: generation.id,
          });
          break;
        }
        this.#lastError = { at: now.toISOString(), stage: outcome.stage, message: outcome.message };
        break;
    }
    return outcome;
  }

  /** Reads the templates again and tries the current render even if it failed before (SIGHUP). */
  async retry(): Promise<void> {
    this.#o.applier.forgetFailure?.();
    await this.loadTemplates();
    await this.run();
  }

  /**
   * Consul cannot be read and nothing was ever applied: render and apply a stand-in config (no
   * routes; 503 everywhere) so nginx listens and says "not yet". No effect once a view exists.
   */
  serveStandIn(): void {
    if (this.#built || this.#standIn || this.#o.applier.liveId !== null) return;
    this.#standIn = true;
    this.#o.log.warn(
      "Consul cannot be read and no config was ever applied: serving a stand-in config answering 503",
    );
    void this.run();
  }

  /** Whether the live config is the stand-in (the edge serves, but nothing is routed). */
  get standInLive(): boolean {
    return this.#standInLive;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    this.#quiescence.stop();
    clearTimeout(this.#graceTimer);
  }

  /** What the status page and /health need. */
  state(): ManagerState {
    return {
      catalog: this.#built?.catalog,
      liveView: this.#liveView,
      liveId: this.#o.applier.liveId,
      liveSince: this.#liveSince,
      rejects: this.#built?.rejects ?? [],
      held: this.#holder?.held ?? [],
      templates: this.#templates.map((t) => ({
        source: t.spec.source,
        dest: t.spec.dest,
        error: t.error ? t.error.message : null,
      })),
      lastError: this.#lastError,
      ...(this.#o.dataPlane ? { liveSets: this.#o.dataPlane.live } : {}),
    };
  }
}
