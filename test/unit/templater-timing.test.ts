// Quiescence (coalescing bursts) and the blocking-query index rules.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  blockingTimeoutMs,
  floorDelay,
  stepIndex,
} from "../../services/templater/src/core/blocking-index.ts";
import { Quiescence } from "../../services/templater/src/core/quiescence.ts";

/** A manual clock: timers run when `advance` passes them. */
function clock() {
  let now = 0;
  let timers: { at: number; fn: () => void; id: number }[] = [];
  let ids = 0;
  return {
    now: () => now,
    setTimer: (fn: () => void, ms: number) => {
      const id = ++ids;
      timers.push({ at: now + ms, fn, id });
      return id;
    },
    clearTimer: (id: unknown) => {
      timers = timers.filter((t) => t.id !== id);
    },
    advance(ms: number) {
      const end = now + ms;
      for (;;) {
        const next = timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
        if (!next) break;
        timers = timers.filter((t) => t !== next);
        now = next.at;
        next.fn();
      }
      now = end;
    },
  };
}

function setup(minMs = 100, maxMs = 1000) {
  const c = clock();
  const fired: number[] = [];
  const q = new Quiescence({
    minMs,
    maxMs,
    fire: () => fired.push(c.now()),
    setTimer: c.setTimer,
    clearTimer: c.clearTimer,
    now: c.now,
  });
  return { c, q, fired };
}

describe("quiescence", () => {
  it("fires the first change at once", () => {
    const { q, fired } = setup();
    q.change();
    assert.deepEqual(fired, [0]);
  });

  it("coalesces a burst: fires min after the last change", () => {
    const { c, q, fired } = setup();
    q.change(); // t=0, fires at once
    for (let i = 0; i < 5; i++) {
      c.advance(30);
      q.change();
    }
    assert.equal(q.pending, true);
    c.advance(99);
    assert.deepEqual(fired, [0]);
    c.advance(1);
    assert.deepEqual(fired, [0, 250]);
    assert.equal(q.pending, false);
  });

  it("never waits longer than max after the first change of a burst", () => {
    const { c, q, fired } = setup();
    q.change();
    c.advance(10);
    for (let i = 0; i < 100; i++) {
      q.change();
      c.advance(50);
    }
    // changes every 50 ms for 5 s: fires every 1 s, not never
    assert.deepEqual(fired, [0, 1010, 2010, 3010, 4010, 5010]);
  });

  it("a change after a quiet spell of max fires at once; min 0 disables coalescing", () => {
    const { c, q, fired } = setup();
    q.change();
    c.advance(5000);
    q.change();
    assert.deepEqual(fired, [0, 5000]);
    const off = setup(0, 0);
    off.q.change();
    off.q.change();
    assert.equal(off.fired.length, 2);
  });

  it("fires at most once per change plus once per burst, and always fires after the last change (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 1500 }), { minLength: 1, maxLength: 60 }), (gaps) => {
        const { c, q, fired } = setup();
        let last = 0;
        for (const g of gaps) {
          c.advance(g);
          q.change();
          last = c.now();
        }
        c.advance(2000);
        assert.ok(fired.length >= 1 && fired.length <= gaps.length);
        assert.ok(fired[fired.length - 1]! >= last, "the last change is always rendered");
        assert.ok(fired[fired.length - 1]! <= last + 100);
        assert.equal(q.pending, false);
      }),
    );
  });

  it("50 changes 5 ms apart give at most 3 renders", () => {
    const { c, q, fired } = setup();
    q.change();
    c.advance(3000);
    for (let i = 0; i < 50; i++) {
      q.change();
      c.advance(5);
    }
    c.advance(2000);
    assert.ok(fired.length - 1 <= 3, `renders: ${fired.length - 1}`);
  });
});

describe("blocking query index", () => {
  it("treats the first answer, and a moved index, as news", () => {
    assert.deepEqual(stepIndex(0, 42), { next: 42, changed: true, reset: false });
    assert.deepEqual(stepIndex(42, 42), { next: 42, changed: false, reset: false });
    assert.deepEqual(stepIndex(42, 50), { next: 50, changed: true, reset: false });
  });
  it("resets to 0 when the index goes backwards (Consul restarted)", () => {
    assert.deepEqual(stepIndex(500, 12), { next: 0, changed: true, reset: true });
  });
  it("never sends an index below 1 (a zero index would make every query return at once)", () => {
    assert.equal(stepIndex(0, 0).next, 1);
    assert.equal(stepIndex(7, Number.NaN).next, 1);
    assert.equal(stepIndex(7, 0).changed, false);
  });
  it("times out after wait plus Consul's jitter plus a margin, and keeps a floor between queries", () => {
    assert.equal(blockingTimeoutMs(60_000), 60_000 + 3750 + 5000);
    assert.equal(floorDelay(1000, 1010, 50), 40);
    assert.equal(floorDelay(1000, 2000, 50), 0);
  });
});
