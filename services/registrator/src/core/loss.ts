// Has the Consul agent lost what this registrator registered? Decided from one
// answer of the blocking read of this node's services.

export interface NodeServices {
  /** X-Consul-Index of the answer. */
  index: number;
  /** Service IDs the catalog holds for this node; null when the node is unknown (a fresh agent). */
  ids: ReadonlySet<string> | null;
}

/**
 * Why the registrations look lost, or undefined when they do not: the index went
 * backwards (a Consul that restarted empty), the node is unknown, or a registration
 * held by this registrator is missing from the node.
 */
export function registryLoss(
  previousIndex: number | undefined,
  answer: NodeServices,
  held: readonly string[],
): string | undefined {
  if (previousIndex !== undefined && answer.index < previousIndex) {
    return `the Consul index went backwards (${previousIndex} → ${answer.index})`;
  }
  if (held.length === 0) return undefined;
  if (answer.ids === null) return "this node is not in the Consul catalog";
  const missing = held.filter((id) => !answer.ids!.has(id));
  if (missing.length === 0) return undefined;
  const shown =
    missing.slice(0, 3).join(", ") + (missing.length > 3 ? ` and ${missing.length - 3} more` : "");
  return `${missing.length} of ${held.length} registrations missing from this node (${shown})`;
}

/** The index for the next blocking read (Consul's rule: never below 1). */
export function nextIndex(answer: NodeServices): number {
  return answer.index > 0 ? answer.index : 1;
}
