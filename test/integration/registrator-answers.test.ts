// A write is confirmed only by a well-formed answer (issue 9 item 1, registrator side):
// with a proxy in front of a real Consul answering every request with an HTML 200, the
// registrator claims nothing, says so on /health (consul not reachable), and registers
// for real once the fault ends.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { startConsulFaultProxy } from "../helpers/consul-fault-proxy.ts";
import { startConsul } from "../helpers/consul.ts";
import { createNetwork } from "../helpers/docker.ts";
import { newRun, ownedIds, runWorkload, startTestRegistrator } from "../helpers/registrator.ts";
import { testScope } from "../helpers/scope.ts";
import { delay, waitFor } from "../helpers/wait.ts";

describe("registrator and answers it cannot read", { timeout: 120_000 }, () => {
  const scope = testScope();

  it("an HTML 200 from 'Consul' confirms nothing; after the fault, the instances reach Consul", async () => {
    const run = newRun();
    const identity = `answers-${run}`;
    const net = await createNetwork(scope);
    const consul = await startConsul(scope, { network: net });
    const proxy = await startConsulFaultProxy(scope, { listenHost: "127.0.0.1", target: consul });
    const reg = await startTestRegistrator(scope, {
      consul: { host: "127.0.0.1", port: proxy.port },
      run,
      identity,
      resyncMs: 2000,
    });
    await reg.synced;

    let registerFaulted = false;
    proxy.set("html", (path) => {
      if (path.startsWith("/v1/agent/service/register")) registerFaulted = true;
      return path.startsWith("/v1/");
    });
    const w = await Promise.all(
      [1, 2, 3].map(() => runWorkload(scope, run, net.name, { labels: { SERVICE_NAME: "ans" } })),
    );
    await waitFor(() => registerFaulted, {
      what: "a registration answered by the fault",
    });
    await delay(2500); // a resync period: the registrator retries, and must still claim nothing
    assert.equal(reg.health().instances, 0, "the registrator claims no instance");
    assert.equal(reg.health().consul, false, "/health says Consul cannot be trusted");
    assert.ok(
      reg.logs.some((l) => /not Consul's \(text\/html/.test(JSON.stringify(l))),
      "the log says what was wrong with the answer",
    );

    proxy.set("none");
    const expected = w.map((x) => `${x.name}:8080`).sort();
    await waitFor(async () => (await ownedIds(consul.client, identity)).join() === expected.join(), {
      what: "registered for real after the fault",
      timeoutMs: 10_000,
      intervalMs: 100,
    });
    assert.equal(reg.health().consul, true);
  });
});
