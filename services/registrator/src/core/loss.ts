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
 * backwards since the previous answer (a Consul that restarted empty), the node became
 * unknown, or a registration held by this registrator is missing from the node.
 */
export function registryLoss(
  previous: NodeServices | undefined,
  answer: NodeServices,
  held: readonly string[],
): string | undefined {
  if (previous !== undefined && answer.index < previous.index) {
    return `the Consul index went backwards (${previous.index} → ${answer.index})`;
  }
  if (held.length === 0) return undefined;
  // Unknown node: a loss when it was known before. A node that stays unknown (a token that may
  // not read it) would otherwise start a full sync on every answer.
  if (answer.ids === null) {
    return previous === undefined || previous.ids !== null
      ? "this node is not in the Consul catalog"
      : undefined;
  }
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
