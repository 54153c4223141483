// core/hold.ts: a restarted Consul is not an emptied one; panic mode keeps a service whose
// instances all fail at once.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { holdRouted, type HoldInput } from "../../services/templater/src/core/hold.ts";
import type { InstanceView, View } from "../../services/templater/src/core/view.ts";

const inst = (id: string, status: InstanceView["status"] = "passing", node = "n1"): InstanceView => ({
  id,
  node,
  address: "10.0.0.1",
  port: 8080,
  status,
  tags: ["http"],
  meta: {},
});
const view = (services: Record<string, InstanceView[]>): View => ({
  services: Object.entries(services).map(([name, instances]) => ({
    name,
    tags: ["http"],
    meta: {},
    instances,
  })),
});
const ids = (v: View, name: string) =>
  v.services.find((s) => s.name === name)?.instances.map((i) => i.id) ?? [];
const base = (over: Partial<HoldInput>): HoldInput => ({
  previous: view({ web: [inst("w1"), inst("w2")], api: [inst("a1")] }),
  routed: view({}),
  catalog: view({}),
  nodesDown: new Set(),
  now: 1000,
  suspectSince: undefined,
  graceMs: 30_000,
  panic: true,
  ...over,
});

describe("restart grace", () => {
  it("after an index reset, instances absent from the catalog stay routed until they are back", () => {
    const r = holdRouted(base({ suspectSince: 900 }));
    assert.deepEqual(ids(r.view, "web"), ["w1", "w2"]);
    assert.deepEqual(ids(r.view, "api"), ["a1"]);
    assert.deepEqual(
      r.held.map((h) => [h.service, h.reason]),
      [
        ["api", "consul-restarted"],
        ["web", "consul-restarted"],
      ],
    );
    assert.equal(r.graceEndsAt, 30_900);
    // Half refilled: w1 is back, w2 still held; api back too.
    const half = holdRouted(
      base({
        previous: r.view,
        suspectSince: r.suspectSince,
        routed: view({ web: [inst("w1")], api: [inst("a1")] }),
        catalog: view({ web: [inst("w1")], api: [inst("a1")] }),
      }),
    );
    assert.deepEqual(ids(half.view, "web"), ["w1", "w2"]);
    assert.deepEqual(half.held, [{ service: "web", reason: "consul-restarted", instances: ["n1/w2"] }]);
    // All back: nothing held, the grace period ends early.
    const full = view({ web: [inst("w1"), inst("w2")], api: [inst("a1")] });
    const done = holdRouted(
      base({ previous: half.view, suspectSince: half.suspectSince, routed: full, catalog: full }),
    );
    assert.deepEqual(done.held, []);
    assert.equal(done.suspectSince, undefined);
  });

  it("the grace period ends after graceMs; emptiness with no index reset is applied at once", () => {
    const r = holdRouted(base({ suspectSince: 1000 }));
    assert.deepEqual(ids(r.view, "web"), ["w1", "w2"]);
    const later = holdRouted(base({ previous: r.view, suspectSince: r.suspectSince, now: 1000 + 30_000 }));
    assert.deepEqual(later.view.services, []);
    assert.equal(later.suspectSince, undefined);
    assert.deepEqual(holdRouted(base({})).view.services, []);
  });

  it("an ordinary scale-down is applied at once", () => {
    const catalog = view({ api: [inst("a1")] });
    const r = holdRouted(base({ routed: catalog, catalog }));
    assert.deepEqual(ids(r.view, "web"), []);
    assert.deepEqual(r.held, []);
    assert.equal(r.suspectSince, undefined);
  });

  it("never holds an instance on a node whose serfHealth fails", () => {
    const r = holdRouted(base({ suspectSince: 900, nodesDown: new Set(["n1"]) }));
    assert.deepEqual(r.view.services, []);
  });
});

describe("panic mode", () => {
  const allCritical = view({ web: [inst("w1", "critical"), inst("w2", "critical")], api: [inst("a1")] });
  const routedNow = view({ web: [], api: [inst("a1")] });

  it("every instance critical at once while registered: the last routed set stays", () => {
    const r = holdRouted(base({ routed: routedNow, catalog: allCritical }));
    assert.deepEqual(ids(r.view, "web"), ["w1", "w2"]);
    assert.deepEqual(r.held, [{ service: "web", reason: "panic", instances: ["n1/w1", "n1/w2"] }]);
    // One passes again: normal routing.
    const one = view({ web: [inst("w1")], api: [inst("a1")] });
    const back = holdRouted(
      base({
        previous: r.view,
        routed: one,
        catalog: view({ web: [inst("w1"), inst("w2", "critical")], api: [inst("a1")] }),
      }),
    );
    assert.deepEqual(ids(back.view, "web"), ["w1"]);
    assert.deepEqual(back.held, []);
  });

  it("routes every registered instance, not only the last survivor of instances failing one by one", () => {
    const r = holdRouted(
      base({ previous: view({ web: [inst("w2")] }), routed: routedNow, catalog: allCritical }),
    );
    assert.deepEqual(ids(r.view, "web"), ["w1", "w2"]);
  });

  it("is off when disabled, and never keeps a deregistered instance or one on a failed node", () => {
    assert.deepEqual(
      ids(holdRouted(base({ routed: routedNow, catalog: allCritical, panic: false })).view, "web"),
      [],
    );
    const gone = view({ web: [], api: [inst("a1")] });
    assert.deepEqual(ids(holdRouted(base({ routed: routedNow, catalog: gone })).view, "web"), []);
    const down = holdRouted(base({ routed: routedNow, catalog: allCritical, nodesDown: new Set(["n1"]) }));
    assert.deepEqual(ids(down.view, "web"), []);
  });
});
