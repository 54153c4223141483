import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Backoff, sleep } from "../../lib/backoff.ts";

describe("Backoff", () => {
  it("doubles up to the cap and resets", () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0 });
    assert.deepEqual(
      [b.next(), b.next(), b.next(), b.next(), b.next(), b.next()],
      [100, 200, 400, 800, 1000, 1000],
    );
    assert.equal(b.failures, 6);
    b.reset();
    assert.equal(b.next(), 100);
  });
  it("jitter stays within its fraction", () => {
    const low = new Backoff({ initialMs: 1000, maxMs: 1000, jitter: 0.5, random: () => 0 });
    const high = new Backoff({ initialMs: 1000, maxMs: 1000, jitter: 0.5, random: () => 1 });
    assert.equal(low.next(), 500);
    assert.equal(high.next(), 1000);
  });
  it("sleep ends early when aborted", async () => {
    const ac = new AbortController();
    const started = Date.now();
    setTimeout(() => ac.abort(), 10);
    await sleep(10_000, ac.signal);
    assert.ok(Date.now() - started < 1000);
  });
});
