import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RememberedServices } from "../../services/templater/src/core/remembered.ts";

describe("RememberedServices", () => {
  it("keeps a service for forget-after since it was last seen with instances", () => {
    const r = new RememberedServices(1000);
    r.seen(["web", "api"], 0);
    r.seen(["api"], 800);
    assert.deepEqual(r.retained(900).toSorted(), ["api", "web"]);
    assert.deepEqual(r.retained(1500), ["api"]);
    assert.deepEqual(r.retained(1801), []);
  });
  it("answers the same list while no name comes or goes, a new one once one does", () => {
    const r = new RememberedServices(1000);
    r.seen(["web"], 0);
    const first = r.retained(10);
    r.seen(["web"], 20);
    assert.equal(r.retained(30), first, "nothing came or went: the same list");
    r.seen(["web", "api"], 40);
    assert.deepEqual(r.retained(50).toSorted(), ["api", "web"], "a new name is in the next answer");
    r.seen(["api"], 1200);
    assert.deepEqual(r.retained(1100), ["api"], "a forgotten name is out of the next answer");
  });
  it("remembers nothing when forget-after is 0", () => {
    const r = new RememberedServices(0);
    r.seen(["web"], 0);
    assert.deepEqual(r.retained(0), []);
  });
});
