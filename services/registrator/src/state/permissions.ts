// Where Consul refuses this registrator (401/403), by service name: its own state,
// never "unreachable", one log line per change.

import type { Logger } from "../../../../lib/log.ts";

/** The key for refusals that are not about one service (reading the agent's services). */
export const anyService = "*";

export class Permissions {
  readonly #denied = new Map<string, string>();
  readonly #log: Logger;
  readonly #onChange: (denied: number) => void;

  constructor(log: Logger, onChange: (denied: number) => void) {
    this.#log = log;
    this.#onChange = onChange;
  }

  /** Consul refused something about `service` with `message` (what Consul said). */
  denied(service: string, message: string): void {
    if (this.#denied.get(service) === message) return;
    this.#denied.set(service, message);
    this.#log.warn(message, { serviceName: service === anyService ? undefined : service });
    this.#onChange(this.#denied.size);
  }

  /** Something about `service` succeeded. */
  allowed(service: string): void {
    if (!this.#denied.delete(service)) return;
    this.#log.info("permission granted again", { serviceName: service === anyService ? undefined : service });
    this.#onChange(this.#denied.size);
  }

  /** Service name → what Consul said, for /health. */
  snapshot(): Record<string, string> {
    return Object.fromEntries(this.#denied);
  }
}
