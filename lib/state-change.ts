// Remembers whether a dependency is reachable and reports only transitions,
// so an outage of an hour logs two lines, not thousands.

import { describeError, type Logger } from "./log.ts";

export class Reachability {
  #up: boolean | undefined;
  #since = Date.now();
  readonly #name: string;
  readonly #log: Logger;
  readonly #onChange: ((up: boolean) => void) | undefined;
  readonly #hint: ((err: unknown) => string | undefined) | undefined;

  /** `hint` names the setting to change for an error, when it knows one (e.g. lib/consul-answer.ts tlsHint). */
  constructor(
    name: string,
    log: Logger,
    onChange?: (up: boolean) => void,
    hint?: (err: unknown) => string | undefined,
  ) {
    this.#name = name;
    this.#log = log;
    this.#onChange = onChange;
    this.#hint = hint;
  }

  get up(): boolean {
    return this.#up === true;
  }

  ok(): void {
    if (this.#up === true) return;
    const downMs = this.#up === false ? Date.now() - this.#since : undefined;
    this.#set(true);
    this.#log.info(`${this.#name} reachable`, downMs === undefined ? undefined : { downMs });
  }

  failed(err: unknown, retryInMs?: number): void {
    if (this.#up === false) return;
    this.#set(false);
    // An answer that came but cannot be trusted (an error with kind "malformed") is not an outage.
    const malformed = (err as { kind?: unknown } | undefined)?.kind === "malformed";
    const fix = this.#hint?.(err);
    this.#log.warn(
      malformed
        ? `${this.#name} answer cannot be trusted; retrying until it answers properly`
        : `${this.#name} unreachable; retrying until it answers`,
      { err: describeError(err), retryInMs, ...(fix ? { fix } : {}) },
    );
  }

  #set(up: boolean): void {
    this.#up = up;
    this.#since = Date.now();
    this.#onChange?.(up);
  }
}
