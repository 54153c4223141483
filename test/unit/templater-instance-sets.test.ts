import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  changedNames,
  instanceSets,
  maxBodyBytes,
  parsePersistedSets,
  persistedText,
  pushBodies,
  routesOnly,
  weightOf,
} from "../../services/templater/src/core/instance-sets.ts";
import type { InstanceView, View } from "../../services/templater/src/core/view.ts";

const inst = (
  id: string,
  address: string,
  port: number,
  meta: Record<string, string> = {},
): InstanceView => ({
  id,
  node: "n1",
  address,
  port,
  status: "passing",
  tags: ["http"],
  meta,
});

const view = (instances: InstanceView[]): View => ({
  services: [{ name: "web", tags: ["http"], meta: {}, instances }],
});

describe("instance sets", () => {
  it("weight: meta weight 1–100, default 1; anything else is refused with a reason", () => {
    assert.deepEqual(weightOf({}), { ok: true, value: 1 });
    assert.deepEqual(weightOf({ weight: "100" }), { ok: true, value: 100 });
    for (const bad of ["0", "101", "1.5", "-1", "x", "", "007x"]) {
      assert.equal(weightOf({ weight: bad }).ok, false, bad);
    }
  });

  it("one set per service, peers sorted, IPv6 in brackets, bad weights reported and defaulted", () => {
    const { sets, badWeights } = instanceSets(
      view([
        inst("b", "10.0.0.2", 80, { weight: "3" }),
        inst("a", "fd00::5", 8080),
        inst("c", "10.0.0.1", 80, { weight: "x" }),
      ]),
    );
    assert.deepEqual(sets.get("svc_web"), [
      { endpoint: "10.0.0.1:80", weight: 1 },
      { endpoint: "10.0.0.2:80", weight: 3 },
      { endpoint: "[fd00::5]:8080", weight: 1 },
    ]);
    assert.equal(badWeights.length, 1);
    assert.equal(badWeights[0]!.instance, "c");
  });

  it("the route view leaves instances out, so instance changes cannot change the render", () => {
    const a = routesOnly(view([inst("a", "10.0.0.1", 80)]).services);
    const b = routesOnly(view([inst("a", "10.0.0.1", 80), inst("b", "10.0.0.2", 80)]).services);
    assert.deepEqual(a, b);
    assert.equal("instances" in a[0]!, false);
  });

  it("changed names: added, changed and emptied sets", () => {
    const before = instanceSets(view([inst("a", "10.0.0.1", 80)])).sets;
    assert.deepEqual(changedNames(before, before), []);
    assert.deepEqual(changedNames(before, instanceSets(view([])).sets), ["svc_web"]);
    assert.deepEqual(changedNames(new Map(), before), ["svc_web"]);
    assert.deepEqual(
      changedNames(before, instanceSets(view([inst("a", "10.0.0.1", 80, { weight: "2" })])).sets),
      ["svc_web"],
    );
  });

  it("push bodies stay under the limit, each with its own rising version", () => {
    const sets = new Map(
      Array.from({ length: 1000 }, (_, s) => [
        `svc_s${s}`,
        Array.from({ length: 10 }, (_, i) => ({ endpoint: `10.${s % 250}.${i}.${s % 200}:8080`, weight: 1 })),
      ]),
    );
    const bodies = pushBodies(sets, [...sets.keys()], 41);
    assert.ok(bodies.length > 1);
    bodies.forEach((b, i) => {
      assert.ok(Buffer.byteLength(b) <= maxBodyBytes, `body ${i}: ${b.length}`);
      assert.match(b, new RegExp(`^version ${41 + i}\n`));
    });
    const lines = bodies.flatMap((b) => b.trim().split("\n").slice(1));
    assert.equal(lines.length, 1000);
    assert.equal(
      lines[0],
      `set svc_s0 ${sets
        .get("svc_s0")!
        .map((p) => `${p.endpoint}:1`)
        .join(" ")}`,
    );
    assert.deepEqual(pushBodies(sets, [], 7), ["version 7\n"], "an empty push still moves the version");
  });

  it("the persisted text reads back as the sets it was made of, also after one set changed", () => {
    const web = (instances: InstanceView[]): View => ({
      services: [
        { name: "api", tags: ["http"], meta: {}, instances: [inst("b", "10.0.0.9", 9000, { weight: "5" })] },
        { name: "web", tags: ["http"], meta: {}, instances },
      ],
    });
    const first = instanceSets(web([inst("a", "10.0.0.1", 80), inst("c", "fd00::3", 81)])).sets;
    assert.deepEqual(parsePersistedSets(persistedText(first)), first);
    // A new set for web (another peers array); api's is the same array, its text reused.
    const second = new Map([...first, ["svc_web", [{ endpoint: "10.0.0.2:80", weight: 3 }]]]);
    const text = persistedText(second);
    assert.deepEqual(parsePersistedSets(text), second);
    assert.doesNotMatch(text, /10\.0\.0\.1:80/, "the old web set is not written again");
    // The same peers array under another name is written under that name.
    const renamed = new Map([["svc_other", first.get("svc_web")!]]);
    assert.deepEqual(parsePersistedSets(persistedText(renamed)), renamed);
    assert.equal(persistedText(new Map()), "[]");
  });
});
