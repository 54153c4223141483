import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RememberedServices } from "../../services/templater/src/core/remembered.ts";

describe("RememberedServices", () => {
  it("keeps a service for forget-after since it was last seen with instances", () => {
    const r = new RememberedServices(1000);
    r.seen(["web", "api"], 0);
    r.seen(["api"], 800);
    assert.deepEqual(r.retained(900).sort(), ["api", "web"]);
    assert.deepEqual(r.retained(1500), ["api"]);
    assert.deepEqual(r.retained(1801), []);
  });
  it("remembers nothing when forget-after is 0", () => {
    const r = new RememberedServices(0);
    r.seen(["web"], 0);
    assert.deepEqual(r.retained(0), []);
  });
});
