// The watch that finds a registry loss (a Consul agent restarted empty): a blocking read of
// this node's services, each answer judged by core/loss.ts. The reconciler says what a loss
// sets off (a full sync at once).

import { Backoff, sleep } from "../../../../lib/backoff.ts";
import { describeError, type Logger } from "../../../../lib/log.ts";
import { nextIndex, registryLoss, type NodeServices } from "../core/loss.ts";
import { deniedIn } from "./answer.ts";
import type { Registry } from "./registry.ts";

/** A registration younger than this may not be in the catalog yet: its absence is no loss. */
const catalogLagMs = 1000;

export interface LossWatchOptions {
  nodeServices: NonNullable<Registry["nodeServices"]>;
  /** How long one blocking read waits. */
  waitMs: number;
  /** The most it waits between attempts while the agent does not answer. */
  retryMaxMs: number;
  /** The wait after a refusal (the token may not read the node): once per resync. */
  deniedRetryMs: number;
  /** IDs of the registrations held since before `t` (ms). */
  heldSince(t: number): string[];
  /** The registrations look lost, or the agent answers again after failing: `reason` says which. */
  onLoss(reason: string): void;
  log: Logger;
  signal: AbortSignal;
}

/**
 * Follows this node's services in the catalog until `signal` aborts. `onLoss` runs when the
 * agent answers again after failing, when the index goes backwards, or when a registration
 * held here is missing.
 */
export async function watchRegistryLoss(o: LossWatchOptions): Promise<void> {
  const { signal, waitMs, retryMaxMs } = o;
  const backoff = new Backoff({ initialMs: Math.min(100, retryMaxMs), maxMs: retryMaxMs });
  let previous: NodeServices | undefined;
  let failing = false;
  let lossWatchDenied = false;
  while (!signal.aborted) {
    try {
      const answer = await o.nodeServices(previous ? nextIndex(previous) : 0, waitMs, signal);
      const reason = failing
        ? "the Consul agent answers again"
        : registryLoss(previous, answer, o.heldSince(Date.now() - catalogLagMs));
      failing = false;
      backoff.reset();
      previous = answer;
      if (reason) o.onLoss(reason);
    } catch (err) {
      if (signal.aborted) return;
      failing = true;
      previous = undefined;
      // Not permitted (the token lacks agent:read or node:read): ask again once per resync, say so once.
      const denied = deniedIn(err);
      const delay = denied ? o.deniedRetryMs : backoff.next();
      if (denied && !lossWatchDenied) {
        o.log.warn("registry-loss watch not permitted; a lost registration is restored at the next resync", {
          reason: denied.message,
          request: denied.request,
        });
      }
      lossWatchDenied = denied !== undefined;
      o.log.debug("watch of this node's services failed", {
        err: describeError(err),
        retryInMs: delay,
      });
      await sleep(delay, signal);
    }
  }
}
