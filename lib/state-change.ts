// Remembers whether a dependency is reachable and reports only transitions,
// so an outage of an hour logs two lines, not thousands.

import { describeError, type Logger } from "./log.ts";

export class Reachability {
  #up: boolean | undefined;
  #since = Date.now();
  readonly #name: string;
  readonly #log: Logger;
  readonly #onChange: ((up: boolean) => void) | undefined;

  constructor(name: string, log: Logger, onChange?: (up: boolean) => void) {
    this.#name = name;
    this.#log = log;
    this.#onChange = onChange;
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
    this.#log.warn(`${this.#name} unreachable; retrying until it answers`, {
      err: describeError(err),
      retryInMs,
    });
  }

  #set(up: boolean): void {
    this.#up = up;
    this.#since = Date.now();
    this.#onChange?.(up);
  }
}
