// --scope-network: only containers attached to that network are considered (issue 9 item 8).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { containerInstances } from "../../services/registrator/src/core/instances.ts";
import { facts, mappingOptions } from "../helpers/registrator-fakes.ts";

describe("network scope", () => {
  it("a container on the scope network is registered; one elsewhere is ignored without a problem line", () => {
    const opts = mappingOptions({ scopeNetwork: "lab_default" });
    const on = containerInstances(
      facts({ networks: { lab_default: "172.20.0.5" }, labels: { SERVICE_NAME: "hello" } }),
      opts,
    );
    assert.deepEqual(
      on.instances.map((i) => [i.name, i.address]),
      [["hello", "172.20.0.5"]],
    );
    const off = containerInstances(
      facts({ networks: { other: "172.21.0.5" }, labels: { SERVICE_NAME: "hello" } }),
      opts,
    );
    assert.deepEqual(off, { instances: [], problems: [] });
  });

  it("without a scope, any network will do", () => {
    const m = containerInstances(facts({ networks: { other: "172.21.0.5" } }), mappingOptions());
    assert.equal(m.instances.length, 1);
  });
});
