// Applying a render as a transaction: write it to a staging directory, nginx -t the whole staged
// config, swap it in atomically, reload. Any failure leaves the live config as it was (files and
// nginx), is logged and counted, and the next change tries again. Output identical to the live
// config writes nothing and reloads nothing.

import type { Logger } from "../../../../lib/log.ts";
import type { Generation } from "../core/render.ts";
import type { Metrics } from "../metrics.ts";
import { recorderFor } from "../outcomes.ts";
import type { ConfigStore } from "./config-store.ts";
import type { Reloader, Validator } from "./nginx.ts";

export type ApplyStage = "write" | "validate" | "swap" | "reload";

export type ApplyOutcome =
  | { result: "unchanged" }
  | { result: "applied"; validateMs: number; reloadMs: number }
  | { result: "failed"; stage: ApplyStage; message: string; repeated?: boolean }
  | { result: "dry" };

export interface Applier {
  /** Id of the generation that is live (or, for --dry, last printed). */
  readonly liveId: string | null;
  apply(generation: Generation): Promise<ApplyOutcome>;
  /** Forget which render failed last, so the same render is tried again. */
  forgetFailure?(): void;
}

export interface TransactionOptions {
  store: ConfigStore;
  validator: Validator;
  reloader: Reloader;
  metrics: Metrics;
  log: Logger;
}

const since = (t: number) => performance.now() - t;

export class Transaction implements Applier {
  readonly #o: TransactionOptions;
  /** The last render that failed: the same output is not tried again until something changes. */
  #failed: { id: string; outcome: ApplyOutcome & { result: "failed" } } | undefined;

  constructor(options: TransactionOptions) {
    this.#o = options;
  }

  get liveId(): string | null {
    return this.#o.store.liveId;
  }

  forgetFailure(): void {
    this.#failed = undefined;
  }

  async apply(generation: Generation): Promise<ApplyOutcome> {
    if (generation.id === this.#o.store.liveId) {
      this.#failed = undefined;
      return { result: "unchanged" };
    }
    if (generation.id === this.#failed?.id) return { ...this.#failed.outcome, repeated: true };
    const outcome = await this.#apply(generation);
    this.#failed = outcome.result === "failed" ? { id: generation.id, outcome } : undefined;
    return outcome;
  }

  async #apply(generation: Generation): Promise<ApplyOutcome> {
    const { store, validator, reloader, metrics, log } = this.#o;
    const record = recorderFor(metrics);
    const fail = (stage: ApplyStage, message: string): ApplyOutcome => {
      record.stepFailed(stage);
      log.error("config not applied; the live config stays", {
        stage,
        generation: generation.id,
        error: message,
      });
      return { result: "failed", stage, message };
    };

    let staged;
    try {
      staged = await store.stage(generation);
    } catch (err) {
      return fail("write", (err as Error).message);
    }

    const t0 = performance.now();
    const check = await validator
      .validate(staged.mainPath)
      .catch((err: Error) => ({ ok: false, output: err.message }));
    const validateMs = since(t0);
    record.validated(validateMs);
    if (!check.ok) {
      await store.discard(staged).catch(() => {});
      return fail("validate", `nginx -t rejected the config: ${store.describePaths(check.output, staged)}`);
    }

    let previous: string | null;
    try {
      previous = await store.promote(staged);
    } catch (err) {
      await store.discard(staged).catch(() => {});
      return fail("swap", (err as Error).message);
    }

    const t1 = performance.now();
    try {
      await reloader.reload(generation.id);
    } catch (err) {
      const outcome = fail("reload", (err as Error).message);
      await store
        .restore(previous, generation.id)
        .catch((e: Error) =>
          log.error("could not restore the previous config after a failed reload", { err: e }),
        );
      // nginx may have loaded the new config all the same (e.g. it loaded but serves nothing
      // on the confirmation URL): make it load the previous one again.
      if (previous) {
        await reloader.reload(previous).then(
          () => log.info("nginx serves the previous config again", { generation: previous }),
          (e: Error) => log.error("could not reload nginx with the previous config", { err: e }),
        );
      }
      return outcome;
    }
    const reloadMs = since(t1);
    record.reloaded(reloadMs);
    await store.prune().catch((err: Error) => log.warn("could not remove old generations", { err }));
    return { result: "applied", validateMs, reloadMs };
  }
}

/** `--dry`: prints each new render to stdout; no files, no nginx. */
export class DryRun implements Applier {
  #last: string | null = null;
  readonly #write: (text: string) => void;

  constructor(write: (text: string) => void) {
    this.#write = write;
  }

  get liveId(): string | null {
    return this.#last;
  }

  async apply(generation: Generation): Promise<ApplyOutcome> {
    if (generation.id === this.#last) return { result: "unchanged" };
    this.#last = generation.id;
    for (const f of generation.files) {
      this.#write(
        `> ${f.dest} (generation ${generation.id})\n${f.content}${f.content.endsWith("\n") ? "" : "\n"}`,
      );
    }
    return { result: "dry" };
  }
}
