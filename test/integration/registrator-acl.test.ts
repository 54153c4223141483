// A registrator denied on one service (issue 10 item 4, registrator part), against a real
// Consul 1.8.7 with ACLs and `default_policy = "deny"`: it registers the others, logs the
// refusal once (never "unreachable"), keeps its full syncs advancing, and /health says which
// service is denied.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { startSecureConsul } from "../helpers/consul-secure.ts";
import { createNetwork } from "../helpers/docker.ts";
import { newRun, ownedIds, runWorkload, startTestRegistrator } from "../helpers/registrator.ts";
import { testScope } from "../helpers/scope.ts";
import { delay, waitFor } from "../helpers/wait.ts";

describe("registrator under Consul ACLs", { timeout: 180_000 }, () => {
  const scope = testScope();

  it("denied on one service: the others register, one log line, no flapping, syncs advance, /health names it", async () => {
    const run = newRun();
    const identity = `acl-${run}`;
    const net = await createNetwork(scope);
    const consul = await startSecureConsul(scope, { network: net });
    // The registrator's minimal policy, narrowed: write on "granted" only.
    const { secret: token } = await consul.tokenWith(
      "registrator",
      'service "granted" { policy = "write" }\nservice_prefix "" { policy = "read" }\nnode_prefix "" { policy = "read" }',
    );
    const reg = await startTestRegistrator(scope, { consul, token, run, identity, resyncMs: 1000 });
    await reg.synced;
    const workload = (name: string) => runWorkload(scope, run, net.name, { labels: { SERVICE_NAME: name } });
    const [g1, g2] = await Promise.all([workload("granted"), workload("granted"), workload("refused")]);

    const expected = [g1!, g2!].map((w) => `${w.name}:8080`).sort();
    await waitFor(async () => (await ownedIds(consul.client, identity)).join() === expected.join(), {
      what: "the granted service registered",
    });
    await waitFor(() => reg.health().denied.refused !== undefined, {
      what: "/health names the refused service",
    });
    const syncBefore = reg.health().lastFullSync;
    await delay(4000); // four resync periods
    const h = reg.health();
    assert.match(h.denied.refused!, /^permission denied: /);
    assert.equal(h.denied.granted, undefined);
    assert.equal(h.consul, true, "a refusal is not an outage");
    assert.notEqual(h.lastFullSync, syncBefore, "full syncs keep advancing");
    assert.equal(h.instances, 2);
    const denials = reg.logs.filter((l) => /^permission denied/.test(String(l.msg)));
    assert.equal(denials.length, 1, `one line per change: ${JSON.stringify(denials)}`);
    assert.equal(denials[0]!.serviceName, "refused");
    assert.ok(!reg.logs.some((l) => /unreachable/.test(String(l.msg))), "never reported as unreachable");
    assert.deepEqual(await ownedIds(consul.client, identity), expected, "nothing else touched");
  });
});
