import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { answer, type HandlerOptions } from "../../services/demo-node/src/handler.ts";
import { Lifecycle } from "../../services/demo-node/src/lifecycle.ts";

function opts(over: Partial<HandlerOptions> = {}, now = 10_000): HandlerOptions {
  return {
    name: "web",
    version: "7",
    instance: "abc123",
    latencyMs: 0,
    errorRate: 0,
    lifecycle: new Lifecycle(0, 0),
    now: () => now,
    random: () => 0.5,
    ...over,
  };
}

describe("demo-node answers", () => {
  it("says which service, instance and version answered, on any path", () => {
    const a = answer("GET", "/web/anything", opts());
    assert.equal(a.status, 200);
    assert.deepEqual(a.body, {
      service: "web",
      instance: "abc123",
      version: "7",
      uptimeMs: 10_000,
      method: "GET",
      path: "/web/anything",
    });
  });
  it("readiness follows the lifecycle: starting, ready, draining", () => {
    const lifecycle = new Lifecycle(0, 5000);
    assert.equal(answer("GET", "/readyz", opts({ lifecycle }, 4999)).status, 503);
    assert.equal(answer("GET", "/readyz", opts({ lifecycle }, 5000)).status, 200);
    lifecycle.drain();
    assert.equal(answer("GET", "/readyz", opts({ lifecycle }, 6000)).status, 503);
    assert.equal(answer("GET", "/healthz", opts({ lifecycle }, 6000)).status, 200, "alive while draining");
    assert.equal(answer("GET", "/", opts({ lifecycle }, 6000)).status, 200, "still serves while draining");
  });
  it("injects errors at the configured rate and latency, never on probes", () => {
    assert.equal(answer("GET", "/", opts({ errorRate: 0.6, random: () => 0.5 })).status, 500);
    assert.equal(answer("GET", "/", opts({ errorRate: 0.4, random: () => 0.5 })).status, 200);
    assert.equal(answer("GET", "/readyz", opts({ errorRate: 1 })).status, 200);
    assert.equal(answer("GET", "/", opts({ latencyMs: 40 })).delayMs, 40);
    assert.equal(answer("GET", "/healthz", opts({ latencyMs: 40 })).delayMs, 0);
  });
});
