// Watches the template files with chokidar. It watches their directories, not the files, so an
// editor's atomic save (write elsewhere, rename over) and a bind-mounted directory both work;
// an in-place save is reported once the file has stopped growing.
// Any event means "read the templates again"; the manager compares texts, so extra events cost
// one read of a few small files.

import path from "node:path";
import chokidar, { type FSWatcher } from "chokidar";
import type { Logger } from "../../../../lib/log.ts";

export interface TemplateFileWatcher {
  close(): Promise<void>;
}

export async function watchTemplateFiles(
  files: readonly string[],
  onChange: (file: string) => void,
  log: Logger,
): Promise<TemplateFileWatcher> {
  const dirs = [...new Set(files.map((f) => path.dirname(path.resolve(f))))];
  const watcher: FSWatcher = chokidar.watch(dirs, {
    ignoreInitial: true,
    depth: 0,
    atomic: true,
    // An in-place save truncates the file first: reading at once could compile an empty or
    // half-written template (valid Handlebars, and nginx -t might even accept the result).
    awaitWriteFinish: { stabilityThreshold: 100, pollInterval: 25 },
  });
  watcher.on("all", (event, file) => {
    log.debug("template directory changed", { event, file });
    onChange(file);
  });
  watcher.on("error", (err) => log.warn("template watcher error", { err }));
  await new Promise<void>((resolve) => watcher.once("ready", () => resolve()));
  log.info("watching templates", { dirs });
  return { close: () => watcher.close() };
}
