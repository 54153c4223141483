// A Scope collects the clean-up steps of whatever a test file starts and runs them
// in reverse order when the file's tests end, also after a failure or a timeout.
// There is no Ryuk here: nothing else removes what a test forgets.

import { after } from "node:test";

export class Scope {
  readonly #steps: { what: string; fn: () => Promise<unknown> | unknown }[] = [];

  defer(what: string, fn: () => Promise<unknown> | unknown): void {
    this.#steps.push({ what, fn });
  }

  async close(): Promise<void> {
    const failures: string[] = [];
    while (this.#steps.length) {
      const { what, fn } = this.#steps.pop()!;
      try {
        await fn();
      } catch (err) {
        failures.push(`${what}: ${(err as Error).message}`);
      }
    }
    if (failures.length) console.error(`clean-up problems:\n  ${failures.join("\n  ")}`);
  }
}

/** A scope closed by an `after` hook of the current file or describe block. */
export function testScope(): Scope {
  const scope = new Scope();
  after(() => scope.close(), { timeout: 120_000 });
  return scope;
}
