// The templater's Prometheus metrics, in one registry served on /metrics.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { InstanceFigures } from "./apply/control-client.ts";

const fast = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const slow = [0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2, 5, 10];

export interface MetricsOptions {
  /** Exec mode: whether the supervised nginx runs, read at each scrape. */
  nginxRunning?: () => boolean;
  /** Dynamic mode: per-instance figures counted in nginx, read at each scrape. */
  instanceFigures?: () => Promise<readonly InstanceFigures[]>;
}

/** A counter whose values nginx keeps: read at scrape time and copied in. */
function nginxCounter(
  name: string,
  help: string,
  registers: Registry[],
  read: (() => Promise<readonly InstanceFigures[]>) | undefined,
  pick: (f: InstanceFigures) => number,
) {
  return new Counter({
    name,
    help,
    labelNames: ["service", "instance"] as const,
    registers,
    async collect() {
      if (!read) return;
      const figures = await read().catch(() => []);
      this.reset();
      for (const f of figures) {
        this.inc({ service: f.upstream.replace(/^svc_/, ""), instance: f.endpoint }, pick(f));
      }
    },
  });
}

export function createMetrics(opts: MetricsOptions = {}) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "templater_" });
  const r = [registry];
  return {
    registry,
    renders: new Counter({
      name: "templater_renders_total",
      help: "Renders by result: applied (new config live), unchanged (identical to the live one, nothing written), failed (template error), rejected (nginx -t refused it), dry (printed)",
      labelNames: ["result"] as const,
      registers: r,
    }),
    reloads: new Counter({
      name: "templater_reloads_total",
      help: "nginx reloads (or starts) by result",
      labelNames: ["result"] as const,
      registers: r,
    }),
    validationsFailed: new Counter({
      name: "templater_validations_failed_total",
      help: "Renders nginx -t rejected (nothing on disk changed, no reload)",
      registers: r,
    }),
    applyFailures: new Counter({
      name: "templater_apply_failures_total",
      help: "Failed applies by stage: render, write, validate, swap, reload",
      labelNames: ["stage"] as const,
      registers: r,
    }),
    viewSeconds: new Histogram({
      name: "templater_view_duration_seconds",
      help: "Time to build the view from a Consul snapshot (checking every value)",
      buckets: fast,
      registers: r,
    }),
    renderSeconds: new Histogram({
      name: "templater_render_duration_seconds",
      help: "Time to render every template and seal the result into a generation",
      buckets: fast,
      registers: r,
    }),
    validateSeconds: new Histogram({
      name: "templater_validate_duration_seconds",
      help: "Time nginx -t took on the staged config",
      buckets: fast,
      registers: r,
    }),
    reloadSeconds: new Histogram({
      name: "templater_reload_duration_seconds",
      help: "From reload signal (or command) to nginx answering with the new generation",
      buckets: fast,
      registers: r,
    }),
    applySeconds: new Histogram({
      name: "templater_apply_duration_seconds",
      help: "Whole apply after the render: write staging, nginx -t, swap, reload, confirmation",
      buckets: fast,
      registers: r,
    }),
    changeToLiveSeconds: new Histogram({
      name: "templater_change_to_live_seconds",
      help: "From the Consul answer that carried a change to nginx serving it (includes the quiescence wait)",
      buckets: slow,
      registers: r,
    }),
    lastSuccess: new Gauge({
      name: "templater_last_success_timestamp_seconds",
      help: "When a render last went live or was found identical to the live config",
      registers: r,
    }),
    consulUp: new Gauge({
      name: "templater_consul_up",
      help: "1 while Consul answers, 0 while it does not",
      registers: r,
    }),
    heldInstances: new Gauge({
      name: "templater_held_instances",
      help: "Instances routed although the catalog alone would not route them, by reason: consul-restarted (absent after Consul's index went backwards, within --restart-grace), panic (every instance of the service failing at once)",
      labelNames: ["reason"] as const,
      registers: r,
    }),
    consulProblem: new Gauge({
      name: "templater_consul_problem",
      help: "1 for the kind of problem Consul's answers have now (denied: ACLs refuse the token; malformed: an answer that cannot be trusted; unreachable), 0 for the others; all 0 while Consul answers well",
      labelNames: ["kind"] as const,
      registers: r,
    }),
    consulProblems: new Counter({
      name: "templater_consul_problems_total",
      help: "Consul answers not used, by kind: denied, malformed, unreachable (the last good view stays)",
      labelNames: ["kind"] as const,
      registers: r,
    }),
    consulRequests: new Counter({
      name: "templater_consul_requests_total",
      help: "Consul HTTP requests by endpoint and result (ok, denied, malformed, unreachable)",
      labelNames: ["endpoint", "result"] as const,
      registers: r,
    }),
    services: new Gauge({
      name: "templater_services",
      help: "Routed services in the current view, by whether they have instances",
      labelNames: ["state"] as const,
      registers: r,
    }),
    instances: new Gauge({
      name: "templater_instances",
      help: "Instances in the current view (routed)",
      registers: r,
    }),
    droppedValues: new Gauge({
      name: "templater_dropped_values",
      help: "Values from Consul left out of the view because they are not safe in nginx config",
      registers: r,
    }),
    templateErrors: new Gauge({
      name: "templater_template_errors",
      help: "Templates that currently fail to compile (their last good version stays in use)",
      registers: r,
    }),
    pushes: new Counter({
      name: "templater_set_pushes_total",
      help: "Dynamic mode: pushes of instance sets to nginx's control listener, by result (pushed: confirmed by reading the version back)",
      labelNames: ["result"] as const,
      registers: r,
    }),
    pushSeconds: new Histogram({
      name: "templater_set_push_duration_seconds",
      help: "Dynamic mode: one push of instance sets, confirmation included",
      buckets: fast,
      registers: r,
    }),
    setsVersion: new Gauge({
      name: "templater_set_version",
      help: "Dynamic mode: version of the instance sets nginx confirmed last",
      registers: r,
    }),
    instanceChangeToLiveSeconds: new Histogram({
      name: "templater_instance_change_to_live_seconds",
      help: "Dynamic mode: from the Consul answer that carried an instance change to nginx confirming the pushed set",
      buckets: fast,
      registers: r,
    }),
    instanceRequests: nginxCounter(
      "templater_instance_requests_total",
      "Dynamic mode: requests nginx sent to each instance (every try), counted in nginx since it started",
      r,
      opts.instanceFigures,
      (f) => f.requests,
    ),
    instanceNon2xx: nginxCounter(
      "templater_instance_non2xx_total",
      "Dynamic mode: tries on each instance that did not answer 2xx (errors and timeouts included)",
      r,
      opts.instanceFigures,
      (f) => f.non2xx,
    ),
    instanceUpstreamSeconds: nginxCounter(
      "templater_instance_upstream_seconds_total",
      "Dynamic mode: time spent waiting on each instance ($upstream_response_time, summed)",
      r,
      opts.instanceFigures,
      (f) => f.upstreamSeconds,
    ),
    nginxUp: new Gauge({
      name: "templater_nginx_up",
      help: "Exec mode: 1 while the supervised nginx runs",
      registers: r,
      collect() {
        this.set(opts.nginxRunning?.() ? 1 : 0);
      },
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
