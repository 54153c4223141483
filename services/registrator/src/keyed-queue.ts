// Runs tasks one at a time per key (a container) and at most `limit` at a time
// overall. A task asked for while an identical one still waits is not queued twice.

import { Semaphore } from "../../../lib/concurrency.ts";

export class KeyedQueue {
  readonly #tails = new Map<string, Promise<void>>();
  /** key → tag of the task that waits (not yet started) at the end of its chain. */
  readonly #waiting = new Map<string, { tag: string; done: Promise<void> }>();
  readonly #sem: Semaphore;

  constructor(limit: number) {
    this.#sem = new Semaphore(limit);
  }

  /** Keys with work queued or running. */
  get size(): number {
    return this.#tails.size;
  }

  /**
   * Queues `task` after every earlier task of `key`. With a `coalesce` tag, a task
   * with the same tag still waiting for its turn stands in for this one.
   */
  run(key: string, task: () => Promise<void>, coalesce?: string): Promise<void> {
    const waiting = this.#waiting.get(key);
    if (coalesce !== undefined && waiting?.tag === coalesce) return waiting.done;
    const prev = this.#tails.get(key) ?? Promise.resolve();
    const done: Promise<void> = prev.then(() =>
      this.#sem.with(async () => {
        if (this.#waiting.get(key)?.done === done) this.#waiting.delete(key);
        await task();
      }),
    );
    if (coalesce !== undefined) this.#waiting.set(key, { tag: coalesce, done });
    else this.#waiting.delete(key);
    const tail = done.catch(() => {});
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return done;
  }
}
