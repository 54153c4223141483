// The rendered configuration on disk, as generations inside one output directory:
//
//   <dir>/current -> generations/<id>      symlink; nginx runs with -c <dir>/current/<main>
//   <dir>/generations/<id>/...             one complete, validated render per directory
//   <dir>/.staging-<id>-…/                 a render being validated (removed on failure)
//
// A new generation becomes live by replacing the `current` symlink with rename(2), which is
// atomic and happens inside <dir>: it works when <dir> is a bind mount (a mounted single file
// could not be replaced). Includes in the main config are relative, so nginx -t on a staging
// directory checks exactly the files that will go live.

import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import type { Logger } from "../../../../lib/log.ts";
import { routesManifest, type Generation } from "../core/render.ts";

export interface StagedGeneration {
  id: string;
  dir: string;
  /** The main config inside the staging directory, for nginx -t. */
  mainPath: string;
}

export interface ConfigStoreOptions {
  dir: string;
  /** Main config file, relative to a generation (e.g. nginx.conf). */
  main: string;
  /** Generations kept on disk, the live one included. */
  keep: number;
  log: Logger;
}

async function fsyncPath(p: string, flags = constants.O_RDONLY): Promise<void> {
  const handle = await fs.open(p, flags);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function writeDurably(file: string, content: string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const handle = await fs.open(file, "w", 0o644);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export class ConfigStore {
  readonly dir: string;
  readonly #o: ConfigStoreOptions;
  readonly #generations: string;
  readonly #current: string;
  #liveId: string | null = null;

  constructor(options: ConfigStoreOptions) {
    this.#o = options;
    this.dir = path.resolve(options.dir);
    this.#generations = path.join(this.dir, "generations");
    this.#current = path.join(this.dir, "current");
  }

  /** The id of the generation `current` points at, or null before the first apply. */
  get liveId(): string | null {
    return this.#liveId;
  }

  /** The path nginx is started with; it always resolves to the live generation. */
  get liveMainPath(): string {
    return path.join(this.#current, this.#o.main);
  }

  generationDir(id: string): string {
    return path.join(this.#generations, id);
  }

  /** The services the live generation routes (its routes manifest); empty when none or unreadable. */
  async liveRoutes(): Promise<string[]> {
    if (this.#liveId === null) return [];
    try {
      const v = JSON.parse(
        await fs.readFile(path.join(this.generationDir(this.#liveId), routesManifest), "utf8"),
      ) as unknown;
      return Array.isArray(v) ? v.filter((n): n is string => typeof n === "string") : [];
    } catch {
      return [];
    }
  }

  /** Creates the layout, removes staging leftovers of a crash, reads which generation is live. */
  async init(): Promise<void> {
    await fs.mkdir(this.#generations, { recursive: true });
    for (const entry of await fs.readdir(this.dir)) {
      if (entry.startsWith(".staging-") || entry.startsWith(".current-")) {
        await fs.rm(path.join(this.dir, entry), { recursive: true, force: true });
      }
    }
    try {
      const target = await fs.readlink(this.#current);
      const id = path.basename(target);
      await fs.access(path.join(this.#generations, id, this.#o.main));
      this.#liveId = id;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EINVAL") {
        throw new Error(
          `${this.#current} exists and is not a symlink; move it away so the templater can manage it`,
          { cause: err },
        );
      }
      this.#liveId = null;
    }
  }

  async stage(generation: Generation): Promise<StagedGeneration> {
    const dir = path.join(this.dir, `.staging-${generation.id}-${randomBytes(4).toString("hex")}`);
    await fs.mkdir(dir);
    try {
      for (const f of generation.files) await writeDurably(path.join(dir, f.dest), f.content);
      if (generation.routes) {
        await writeDurably(path.join(dir, routesManifest), JSON.stringify(generation.routes) + "\n");
      }
    } catch (err) {
      await fs.rm(dir, { recursive: true, force: true });
      throw err;
    }
    return { id: generation.id, dir, mainPath: path.join(dir, this.#o.main) };
  }

  async discard(staged: StagedGeneration): Promise<void> {
    await fs.rm(staged.dir, { recursive: true, force: true });
  }

  /** Moves a validated staging directory into place and points `current` at it. Returns the previous id. */
  async promote(staged: StagedGeneration): Promise<string | null> {
    const target = this.generationDir(staged.id);
    if (staged.id === this.#liveId) throw new Error(`generation ${staged.id} is already live`);
    await fs.rm(target, { recursive: true, force: true });
    await fs.rename(staged.dir, target);
    await fsyncPath(this.#generations);
    const previous = this.#liveId;
    await this.#point(staged.id);
    return previous;
  }

  /** Undoes a promote whose reload failed: `current` goes back, the new generation is removed. */
  async restore(previous: string | null, failed: string): Promise<void> {
    if (previous) await this.#point(previous);
    else {
      await fs.rm(this.#current, { force: true });
      this.#liveId = null;
    }
    await fs.rm(this.generationDir(failed), { recursive: true, force: true });
  }

  /** Keeps the live generation and the most recent others, `keep` in all. */
  async prune(): Promise<void> {
    const entries = await fs.readdir(this.#generations);
    const stats = await Promise.all(
      entries
        .filter((e) => e !== this.#liveId)
        .map(async (e) => ({ e, mtime: (await fs.stat(path.join(this.#generations, e))).mtimeMs })),
    );
    stats.sort((a, b) => b.mtime - a.mtime);
    for (const { e } of stats.slice(Math.max(0, this.#o.keep - 1))) {
      await fs.rm(path.join(this.#generations, e), { recursive: true, force: true });
    }
  }

  async #point(id: string): Promise<void> {
    const tmp = path.join(this.dir, `.current-${randomBytes(4).toString("hex")}`);
    await fs.symlink(path.join("generations", id), tmp);
    try {
      await fs.rename(tmp, this.#current);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
    await fsyncPath(this.dir);
    this.#liveId = id;
  }

  /** Turns staging paths in nginx's messages back into the file names a reader knows. */
  describePaths(message: string, staged: StagedGeneration): string {
    return message.replaceAll(`${staged.dir}/`, "");
  }
}
