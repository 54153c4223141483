// The per-service long polls (watch/service-watches.ts) with a scripted read in place of Consul:
// which answers they deliver, which index they wait on next, and that unfollowed ones stop.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { silentLogger } from "../../lib/log.ts";
import { delay, waitFor } from "../helpers/wait.ts";
import type { ServiceAnswer } from "../../services/templater/src/core/catalog.ts";
import type { BlockingRead } from "../../services/templater/src/watch/consul-api.ts";
import {
  ServiceWatches,
  type ServiceWatchesOptions,
} from "../../services/templater/src/watch/service-watches.ts";

const answer = (name: string, index: number): ServiceAnswer => ({ name, index, nodes: [], checks: [] });

/** A read that answers each call from `script` (by service), then blocks until aborted. */
function scripted(script: Record<string, number[]>) {
  const asked: { name: string; index: number; waitMs: number }[] = [];
  const read = (name: string, r: BlockingRead, signal: AbortSignal) => {
    asked.push({ name, index: r.index, waitMs: r.waitMs });
    const next = script[name]?.shift();
    if (next !== undefined) return Promise.resolve({ index: next, body: answer(name, next) });
    return new Promise<never>((_, reject) =>
      signal.addEventListener("abort", () => reject(new Error("aborted"))),
    );
  };
  return { asked, read };
}

const watches = (o: Pick<ServiceWatchesOptions, "read"> & Partial<ServiceWatchesOptions>) =>
  new ServiceWatches({
    waitMs: 1000,
    floorMs: 0,
    retryInitialMs: 1,
    retryMaxMs: 1,
    onAnswer: () => {},
    log: silentLogger,
    ...o,
  });

/** Waits until `done` holds (no timer to race on a busy machine). */
const until = (done: () => boolean, what: string) => waitFor(done, { what, timeoutMs: 5000, intervalMs: 1 });
/** Waits until `asked` holds `n` requests: the watch has acted on every scripted answer before. */
const untilAsked = (asked: unknown[], n: number) => until(() => asked.length >= n, `${n} requests`);

describe("service watches", () => {
  it("delivers only answers newer than what it waits on, and waits on the service's own index after a timeout", async () => {
    // 40: timed out below the start index (the service's own index); 40 again: nothing new; 55: a change.
    const { asked, read } = scripted({ web: [40, 40, 55] });
    const got: number[] = [];
    const w = watches({ read, onAnswer: (a) => got.push(a.index), random: () => 1 });
    const ctl = new AbortController();
    w.follow(["web"], 50, ctl.signal);
    // The 4th request is made only after the 3rd answer (55) was handled: no timer to race.
    await untilAsked(asked, 4);
    ctl.abort();
    assert.deepEqual(got, [55]);
    assert.deepEqual(
      asked.map((a) => a.index),
      [50, 40, 40, 55],
    );
    assert.ok(asked.every((a) => a.waitMs === 1000));
  });

  it("draws each wait from half to all of waitMs, so watches started together do not time out together", async () => {
    const { asked, read } = scripted({ web: [] });
    const w = watches({ read, random: () => 0 });
    const ctl = new AbortController();
    w.follow(["web"], 1, ctl.signal);
    await untilAsked(asked, 1);
    ctl.abort();
    assert.equal(asked[0]?.waitMs, 500);
  });

  it("stops the watches it no longer follows and reports a failing one as unhealthy", async () => {
    let calls = 0;
    const w = watches({
      read: (name, _r, signal) => {
        calls++;
        if (name === "bad") return Promise.reject(new Error("connection refused"));
        return new Promise<never>((_, reject) =>
          signal.addEventListener("abort", () => reject(new Error("aborted"))),
        );
      },
      retryInitialMs: 5,
      retryMaxMs: 5,
    });
    const ctl = new AbortController();
    w.follow(["web", "bad"], 1, ctl.signal);
    await until(() => !w.healthy, "the failing watch reported");
    assert.equal(w.healthy, false);
    assert.equal(w.has("web"), true);
    w.follow(["web"], 1, ctl.signal);
    assert.equal(w.healthy, true);
    assert.equal(w.has("bad"), false);
    const before = calls;
    // Its retry is 5 ms: a watch left running would ask again several times in 50 ms.
    await delay(50);
    assert.equal(calls, before, "an unfollowed watch went on asking");
    ctl.abort();
  });
});
