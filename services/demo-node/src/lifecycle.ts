// The instance's life: starting (slow start) → ready → draining (after SIGTERM).
// Pure: time comes in as numbers.

export type Phase = "starting" | "ready" | "draining";

export class Lifecycle {
  readonly startedAt: number;
  readonly #readyAt: number;
  #draining = false;

  constructor(startedAt: number, slowStartMs: number) {
    this.startedAt = startedAt;
    this.#readyAt = startedAt + slowStartMs;
  }

  phase(now: number): Phase {
    if (this.#draining) return "draining";
    return now >= this.#readyAt ? "ready" : "starting";
  }

  drain(): void {
    this.#draining = true;
  }

  get draining(): boolean {
    return this.#draining;
  }
}
