// A Scope collects the clean-up steps of whatever a test file starts and runs them
// in reverse order when the file's tests end, also after a failure or a timeout.
// There is no Ryuk here: nothing else removes what a test forgets, so a step that fails
// makes close() throw (after running every other step) and the test file fails with it.

import { after } from "node:test";

export class Scope {
  readonly #steps: { what: string; fn: () => Promise<unknown> | unknown }[] = [];

  defer(what: string, fn: () => Promise<unknown> | unknown): void {
    this.#steps.push({ what, fn });
  }

  async close(): Promise<void> {
    const failures: Error[] = [];
    while (this.#steps.length) {
      const { what, fn } = this.#steps.pop()!;
      try {
        await fn();
      } catch (err) {
        failures.push(new Error(`clean-up of ${what} failed: ${(err as Error).message}`, { cause: err }));
      }
    }
    if (failures.length === 1) throw failures[0];
    if (failures.length) throw new AggregateError(failures, failures.map((f) => f.message).join("; "));
  }
}

/** A scope closed by an `after` hook of the current file or describe block. */
export function testScope(): Scope {
  const scope = new Scope();
  after(() => scope.close(), { timeout: 120_000 });
  return scope;
}
