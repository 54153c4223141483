// The one place that turns apply outcomes into metrics: renders, the transaction's steps
// (validate, swap, reload), whole runs, and instance-set pushes. The manager, the transaction
// and the data plane report here; nothing else increments these metrics.

import type { PushOutcome } from "./apply/data-plane.ts";
import type { ApplyStage } from "./apply/transaction.ts";
import type { Metrics } from "./metrics.ts";

export type RunResult = "applied" | "unchanged" | "dry" | "failed" | "render-failed" | "no-data";

export class OutcomeRecorder {
  readonly #m: Metrics;

  constructor(metrics: Metrics) {
    this.#m = metrics;
  }

  renderFailed(): void {
    this.#m.renders.inc({ result: "failed" });
    this.#m.applyFailures.inc({ stage: "render" });
  }

  rendered(ms: number): void {
    this.#m.renderSeconds.observe(ms / 1000);
  }

  validated(ms: number): void {
    this.#m.validateSeconds.observe(ms / 1000);
  }

  reloaded(ms: number): void {
    this.#m.reloadSeconds.observe(ms / 1000);
    this.#m.reloads.inc({ result: "ok" });
  }

  stepFailed(stage: ApplyStage): void {
    this.#m.applyFailures.inc({ stage });
    if (stage === "validate") this.#m.validationsFailed.inc();
    if (stage === "reload") this.#m.reloads.inc({ result: "failed" });
  }

  /** A whole run after the render: `since` is when Consul's answer carrying the change arrived. */
  run(result: RunResult, applyMs: number, since: number | undefined): void {
    this.#m.applySeconds.observe(applyMs / 1000);
    const now = Date.now();
    switch (result) {
      case "unchanged":
        this.#m.renders.inc({ result: "unchanged" });
        this.#m.lastSuccess.set(now / 1000);
        break;
      case "applied":
      case "dry":
        this.#m.renders.inc({ result });
        this.#m.lastSuccess.set(now / 1000);
        if (since !== undefined) this.#m.changeToLiveSeconds.observe((now - since) / 1000);
        break;
      case "failed":
        this.#m.renders.inc({ result: "rejected" });
        break;
      default:
        break;
    }
  }

  push(outcome: PushOutcome, since: number | undefined): void {
    this.#m.pushes.inc({ result: outcome.result });
    this.#m.pushSeconds.observe(outcome.ms / 1000);
    if (outcome.result !== "pushed") return;
    this.#m.setsVersion.set(outcome.version ?? 0);
    if (since !== undefined) this.#m.instanceChangeToLiveSeconds.observe((Date.now() - since) / 1000);
  }
}

const recorders = new WeakMap<Metrics, OutcomeRecorder>();

/** The recorder of a metrics set (one per registry, shared by everything that reports to it). */
export function recorderFor(metrics: Metrics): OutcomeRecorder {
  let r = recorders.get(metrics);
  if (!r) recorders.set(metrics, (r = new OutcomeRecorder(metrics)));
  return r;
}
