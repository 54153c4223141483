// Signal handling for entry points: the first SIGTERM/SIGINT aborts the returned
// signal so loops stop; a second one exits at once. `onSignal` (optional) also hears the
// first one, e.g. to forward it to a child process.

import type { Logger } from "./log.ts";

export function onShutdown(
  log: Logger,
  signals: NodeJS.Signals[] = ["SIGTERM", "SIGINT"],
  onSignal?: (signal: NodeJS.Signals) => void,
): AbortController {
  const controller = new AbortController();
  for (const sig of signals) {
    process.on(sig, () => {
      if (controller.signal.aborted) {
        log.warn("second signal; exiting now", { signal: sig });
        process.exit(1);
      }
      log.info("shutting down", { signal: sig });
      controller.abort();
      onSignal?.(sig);
    });
  }
  return controller;
}
