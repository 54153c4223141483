// The apply side of dynamic upstreams: keeps nginx's instance sets equal to the desired ones.
// Instance changes are pushed at once (only the sets that changed); a full push follows every
// nginx start or reload (PushingReloader). Pushes are serialised, versioned and confirmed by
// reading the version back; a failed push is retried with backoff until it succeeds or a newer
// desired state replaces it.

import { readFile, rename, writeFile } from "node:fs/promises";
import { Backoff } from "../../../../lib/backoff.ts";
import type { Logger } from "../../../../lib/log.ts";
import {
  changedNames,
  parsePersistedSets,
  persistedText,
  pushBodies,
  type InstanceSets,
} from "../core/instance-sets.ts";
import type { ControlClient } from "./control-client.ts";
import type { Reloader } from "./nginx.ts";

export interface PushOutcome {
  result: "pushed" | "failed";
  names: number;
  version?: number;
  ms: number;
  message?: string;
}

export interface DataPlaneOptions {
  client: ControlClient;
  log: Logger;
  /** Called after every push attempt (the one place that records outcomes and metrics). */
  onPush: (outcome: PushOutcome, since: number | undefined) => void;
  retry?: { initialMs: number; maxMs: number };
  /** Whether nginx runs (before it does, sets are only remembered; its start pushes them all). */
  isReady?: () => boolean;
  /**
   * A file keeping the desired sets, so nginx started after a restart gets peers before Consul
   * answers (as the last good config keeps its routes). Best effort: a failed write is logged.
   */
  persistPath?: string;
}

/**
 * Least time between two saves of the desired sets. Each save writes every set (436 KB at
 * 1,000 × 10), so at 100 ms the saves were most of what a steady stream of changes allocated,
 * and their garbage collections fell into later changes (bench/README.md). The file only matters
 * when nginx starts afresh; Consul's answer corrects a save that is a second old.
 */
const saveDelayMs = 1000;

export class DataPlane {
  readonly #o: DataPlaneOptions;
  readonly #backoff: Backoff;
  #desired: InstanceSets = new Map();
  #pushed: InstanceSets = new Map();
  #desiredSince: number | undefined;
  #nextVersion: number | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  #queued = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #lastError: string | null = null;
  #liveVersion: number | null = null;
  #stopped = false;

  constructor(options: DataPlaneOptions) {
    this.#o = options;
    this.#backoff = new Backoff(options.retry ?? { initialMs: 100, maxMs: 5000 });
  }

  /** The sets nginx confirmed last, and their version. */
  get live(): { sets: InstanceSets; version: number | null } {
    return { sets: this.#pushed, version: this.#liveVersion };
  }

  get desired(): InstanceSets {
    return this.#desired;
  }

  /** The last push error, null once a push succeeded. */
  get lastError(): string | null {
    return this.#lastError;
  }

  /** Reads the persisted sets (if any) as the desired ones; true when there were some. */
  async load(): Promise<boolean> {
    if (!this.#o.persistPath) return false;
    try {
      const sets = parsePersistedSets(await readFile(this.#o.persistPath, "utf8"));
      if (!sets) {
        this.#o.log.warn("the saved instance sets are malformed; waiting for Consul", {
          file: this.#o.persistPath,
        });
        return false;
      }
      this.#desired = sets;
      return true;
    } catch {
      return false;
    }
  }

  #saving: Promise<void> = Promise.resolve();
  #saveTimer: NodeJS.Timeout | undefined;

  /** Resolves once the last desired sets are saved (a save waiting for its delay is done now). */
  flush(): Promise<void> {
    if (this.#saveTimer) {
      clearTimeout(this.#saveTimer);
      this.#saveTimer = undefined;
      this.#writeSaved();
    }
    return this.#saving;
  }
  #saveFailed = false;

  /**
   * Saves the desired sets soon: at most one write per saveDelayMs, so a change's push is not
   * held up by serialising every set and a burst writes once.
   */
  #save(): void {
    if (!this.#o.persistPath || this.#saveTimer) return;
    this.#saveTimer = setTimeout(() => {
      this.#saveTimer = undefined;
      this.#writeSaved();
    }, saveDelayMs);
    this.#saveTimer.unref();
  }

  #writeSaved(): void {
    const file = this.#o.persistPath;
    if (!file) return;
    this.#saving = this.#saving.then(async () => {
      try {
        await writeFile(`${file}.tmp`, persistedText(this.#desired));
        await rename(`${file}.tmp`, file);
        this.#saveFailed = false;
      } catch (err) {
        if (!this.#saveFailed) this.#o.log.warn("cannot save the instance sets", { file, err });
        this.#saveFailed = true;
      }
    });
  }

  /**
   * New desired sets: the ones that changed are pushed at once (coalesced while a push runs).
   * Called on every snapshot: sets equal to the desired ones are saved again only after a failed save.
   */
  update(sets: InstanceSets, since?: number): void {
    const changed = sets.size !== this.#desired.size || changedNames(this.#desired, sets).length > 0;
    if (changed) this.#desired = sets;
    if (changed || this.#saveFailed) this.#save();
    this.#desiredSince ??= since;
    if (this.#queued || !(this.#o.isReady?.() ?? true)) return;
    this.#queued = true;
    void this.#exclusive(async () => {
      this.#queued = false;
      const names = changedNames(this.#pushed, this.#desired);
      if (names.length === 0) {
        this.#desiredSince = undefined;
        return;
      }
      await this.#push(names).catch(() => this.#scheduleRetry());
    });
  }

  /** Pushes every set (after nginx started or reloaded: its dict may be empty). Throws on failure. */
  pushAll(): Promise<void> {
    return this.#exclusive(() => this.#push([...this.#desired.keys()]));
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn, fn);
    this.#chain = run.catch(() => {});
    return run;
  }

  #scheduleRetry(): void {
    if (this.#retryTimer || this.#stopped) return;
    const delay = this.#backoff.next();
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (!(this.#o.isReady?.() ?? true)) return this.#scheduleRetry();
      void this.#exclusive(async () => {
        const names = changedNames(this.#pushed, this.#desired);
        await this.#push(names.length ? names : [...this.#desired.keys()]).catch(() => this.#scheduleRetry());
      });
    }, delay);
    this.#retryTimer.unref();
  }

  async #push(names: string[]): Promise<void> {
    const { client, log, onPush } = this.#o;
    const t0 = performance.now();
    const sets = this.#desired;
    const since = this.#desiredSince;
    try {
      this.#nextVersion ??= (await client.version()) + 1;
      const bodies = pushBodies(sets, names, this.#nextVersion);
      const version = this.#nextVersion + bodies.length - 1;
      // Each push answers with the live version read back from nginx's shared dict after it
      // stored its sets (control.lua): the last one's answer confirms the whole push, with no
      // extra round trip on the path of every change.
      let confirmed = 0;
      for (const body of bodies) confirmed = await client.push(body);
      this.#nextVersion = version + 1;
      if (confirmed !== version)
        throw new Error(`nginx reports set version ${confirmed} after pushing ${version}`);
      this.#pushed = sets;
      this.#liveVersion = version;
      this.#desiredSince = undefined;
      this.#backoff.reset();
      if (this.#lastError) log.info("instance sets pushed again after failures", { version });
      this.#lastError = null;
      onPush({ result: "pushed", names: names.length, version, ms: performance.now() - t0 }, since);
    } catch (err) {
      this.#nextVersion = undefined; // ask nginx again next time
      const message = (err as Error).message;
      if (message !== this.#lastError) log.error("instance sets not pushed; retrying", { error: message });
      this.#lastError = message;
      onPush({ result: "failed", names: names.length, ms: performance.now() - t0, message }, since);
      throw new Error(`instance sets not pushed: ${message}`, { cause: err });
    }
  }
}

/**
 * A reloader for dynamic mode: the sets go in before the reload (so the new config's upstreams
 * have peers the moment its workers start) and all of them again after it (nginx may have
 * started fresh, with an empty dict), before the new config counts as applied.
 */
export function pushingReloader(inner: Reloader, plane: DataPlane, isRunning: () => boolean): Reloader {
  return {
    async reload(generation) {
      if (isRunning()) await plane.pushAll().catch(() => {});
      await inner.reload(generation);
      await plane.pushAll();
    },
  };
}
