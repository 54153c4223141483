// The registrator's Prometheus metrics, in one registry served on /metrics.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface Metrics {
  registry: Registry;
  events: Counter<"action">;
  registrations: Counter;
  deregistrations: Counter;
  statusUpdates: Counter<"status">;
  errors: Counter<"kind">;
  inputProblems: Counter;
  reconcileSeconds: Histogram<"scope">;
  consulUp: Gauge;
  dockerUp: Gauge;
  instances: Gauge;
  readyProbes: Counter<"result">;
  restores: Counter;
}

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    events: new Counter({
      name: "registrator_docker_events_total",
      help: "Docker events received, by action",
      labelNames: ["action"],
      registers,
    }),
    registrations: new Counter({
      name: "registrator_registrations_total",
      help: "Service instances registered or updated in Consul",
      registers,
    }),
    deregistrations: new Counter({
      name: "registrator_deregistrations_total",
      help: "Service instances deregistered from Consul",
      registers,
    }),
    statusUpdates: new Counter({
      name: "registrator_check_updates_total",
      help: "TTL check status updates sent to Consul, by status",
      labelNames: ["status"],
      registers,
    }),
    errors: new Counter({
      name: "registrator_errors_total",
      help: "Failed calls, by dependency (consul, docker)",
      labelNames: ["kind"],
      registers,
    }),
    inputProblems: new Counter({
      name: "registrator_input_problems_total",
      help: "Container settings skipped or dropped because they were unusable (each logged once)",
      registers,
    }),
    reconcileSeconds: new Histogram({
      name: "registrator_reconcile_duration_seconds",
      help: "Time to reconcile, by scope (full resync or one container)",
      labelNames: ["scope"],
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    consulUp: new Gauge({
      name: "registrator_consul_up",
      help: "1 when the last Consul call succeeded",
      registers,
    }),
    dockerUp: new Gauge({
      name: "registrator_docker_up",
      help: "1 when the last Docker call succeeded",
      registers,
    }),
    instances: new Gauge({
      name: "registrator_instances",
      help: "Service instances this registrator holds in Consul",
      registers,
    }),
    readyProbes: new Counter({
      name: "registrator_ready_probes_total",
      help: "Readiness probe rounds that ended, by result (ready, gave_up)",
      labelNames: ["result"],
      registers,
    }),
    restores: new Counter({
      name: "registrator_registry_loss_checks_total",
      help: "Full syncs started at once because the Consul agent looked like it lost registrations (restarted empty, index backwards, an instance missing)",
      registers,
    }),
  };
}
