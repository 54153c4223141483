// Docker events → what the reconciler should do about them. Reads Action and
// Actor (ID, Attributes), never the deprecated status/id/from fields.

import { constants } from "node:os";
import { matchesFilter } from "./instances.ts";
import type { LabelSelector } from "./types.ts";

export interface DockerEvent {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes?: Record<string, string> };
  time?: number;
  timeNano?: number;
  /** Resume point for a reconnect ("seconds.nanoseconds"), set by the Docker adapter. */
  since?: string;
}

export type EventEffect =
  /** Started: forget draining and readiness of any earlier run, then reconcile. */
  | { kind: "start"; containerId: string }
  /** Asked to stop (SIGTERM or the container's stop signal): out of rotation now. */
  | { kind: "drain"; containerId: string; signal: number }
  /** Gone (died or removed): forget its runtime state, then reconcile. */
  | { kind: "gone"; containerId: string }
  | { kind: "sync"; containerId: string }
  | { kind: "ignore" };

/** The event filter to ask Docker for; anything else is not worth a wake-up. */
export const eventFilters = {
  type: ["container", "network"],
  event: [
    "start",
    "kill",
    "die",
    "stop",
    "destroy",
    "health_status",
    "pause",
    "unpause",
    "rename",
    "connect",
    "disconnect",
  ],
};

/** "SIGTERM", "TERM", "15" → 15; undefined when unknown. */
export function signalNumber(sig: string | undefined): number | undefined {
  if (!sig) return undefined;
  const s = sig.trim().toUpperCase();
  if (/^\d+$/.test(s)) return Number(s);
  const name = (s.startsWith("SIG") ? s : `SIG${s}`) as keyof typeof constants.signals;
  return constants.signals[name];
}

const sigkill = 9;
const sigterm = 15;

export function classifyEvent(
  ev: DockerEvent,
  opts: { labelFilter: readonly LabelSelector[]; stopSignalOf?: (containerId: string) => number | undefined },
): EventEffect {
  const attrs = ev.Actor?.Attributes ?? {};
  if (ev.Type === "network") {
    const containerId = attrs.container;
    if ((ev.Action === "connect" || ev.Action === "disconnect") && containerId) {
      return { kind: "sync", containerId };
    }
    return { kind: "ignore" };
  }
  if (ev.Type !== "container" || !ev.Actor?.ID) return { kind: "ignore" };
  // Container events carry the container's labels as attributes.
  if (!matchesFilter(attrs, opts.labelFilter)) return { kind: "ignore" };
  const containerId = ev.Actor.ID;
  const action = ev.Action.split(":")[0]!.trim();
  switch (action) {
    case "start":
      return { kind: "start", containerId };
    case "die":
    case "destroy":
      return { kind: "gone", containerId };
    case "kill": {
      const signal = signalNumber(attrs.signal);
      if (signal === undefined) return { kind: "ignore" };
      const stopSignal = opts.stopSignalOf?.(containerId);
      return signal === sigterm || signal === sigkill || signal === stopSignal
        ? { kind: "drain", containerId, signal }
        : { kind: "ignore" };
    }
    case "stop":
    case "health_status":
    case "pause":
    case "unpause":
    case "rename":
      return { kind: "sync", containerId };
    default:
      return { kind: "ignore" };
  }
}
