// The harness itself: a real Consul agent via Testcontainers and the `consul` client.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { startConsul, type ConsulHandle } from "../helpers/consul.ts";
import { testScope } from "../helpers/scope.ts";

describe("Consul via Testcontainers", { timeout: 120_000 }, () => {
  const scope = testScope();
  let consul: ConsulHandle;
  before(async () => {
    consul = await startConsul(scope);
  });

  it("registers a service and reads it back", async () => {
    await consul.client.agent.service.register({
      name: "hello",
      id: "hello-1",
      address: "10.1.2.3",
      port: 8080,
      tags: ["http"],
      meta: { owner: "test" },
      check: { ttl: "30s", status: "passing" } as never,
    });
    const entries = await consul.client.health.service({ service: "hello", passing: true });
    assert.equal(entries.length, 1);
    const svc = entries[0].Service;
    assert.equal(svc.ID, "hello-1");
    assert.equal(svc.Address, "10.1.2.3");
    assert.equal(svc.Port, 8080);
    assert.deepEqual(svc.Tags, ["http"]);
    assert.deepEqual(svc.Meta, { owner: "test" });
  });
});
