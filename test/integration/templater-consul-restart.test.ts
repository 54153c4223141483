// Issue 9 items 3 and 4: a Consul restarted empty (a dev agent: `docker restart` loses every
// registration) is not an empty catalog, and a service whose instances all fail their checks
// at once keeps its last routed set (panic mode). Under a keep-alive load: 0 failed requests.
import assert from "node:assert/strict";
import http from "node:http";
import { before, describe, it } from "node:test";
import getPort from "get-port";
import { startConsul, type ConsulHandle } from "../helpers/consul.ts";
import { containerIp, createNetwork, type TestNetwork } from "../helpers/docker.ts";
import { startEdge, type EdgeHandle } from "../helpers/edge.ts";
import { startLoad, type Load } from "../helpers/load.ts";
import { testScope } from "../helpers/scope.ts";
import { delay, waitFor } from "../helpers/wait.ts";
import { createWorkload } from "../helpers/workload.ts";

/** A Consul HTTP call on a connection of its own. */
function consulCall(base: string, method: string, p: string, body?: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${p}`, { method, agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

describe("edge across a Consul restart and a panic", { timeout: 300_000 }, () => {
  const scope = testScope();
  let network: TestNetwork;
  let consul: ConsulHandle;
  let edge: EdgeHandle;
  let ips: string[];
  let load: Load;

  const register = async (i: number) => {
    const status = await consulCall(consul.url, "PUT", "/v1/agent/service/register", {
      ID: `web-${i}`,
      Name: "web",
      Address: ips[i],
      Port: 8080,
      Tags: ["http"],
      Check: { TTL: "600s", Status: "passing" },
    });
    assert.equal(status, 200);
  };
  const status = () => edge.status();
  const upstream = async () => (await status()).services.find((s) => s.name === "web")?.upstream ?? [];

  before(async () => {
    network = await createNetwork(scope);
    // A fixed host port, so the agent keeps its address across `docker restart`.
    consul = await startConsul(scope, { network, hostPort: await getPort() });
    const workloads = await Promise.all(
      [0, 1, 2].map(() => createWorkload(scope, { network: network.name })),
    );
    ips = await Promise.all(workloads.map((w) => containerIp(w.id, network.name)));
    for (let i = 0; i < 3; i++) await register(i);
    // Move the catalog's index well above where a fresh agent starts, so the restart shows as
    // an index going backwards (as it does for any Consul that has run for a while).
    for (let n = 0; n < 30; n++) {
      await consulCall(consul.url, "PUT", "/v1/agent/service/register", {
        ID: "churn",
        Name: "churn",
        Port: 1,
      });
      await consulCall(consul.url, "PUT", "/v1/agent/service/deregister/churn");
    }
    edge = await startEdge(scope, { network });
    await waitFor(async () => (await upstream()).length === 3, { what: "3 web servers routed" });
    load = startLoad({ url: `${edge.url}/web/`, rate: 40, connections: 8, durationMs: 240_000 });
    scope.defer("load", () => load.stop());
  });

  it("Consul restarted empty: the last routed instances stay until they are registered again", async () => {
    await consul.container.restart({ timeout: 1 });
    await waitFor(async () => (await consulCall(consul.url, "GET", "/v1/status/leader")) === 200, {
      what: "Consul back",
      timeoutMs: 30_000,
    });
    await waitFor(async () => (await status()).held.some((h) => h.reason === "consul-restarted"), {
      what: "the edge to hold web after the restart",
      timeoutMs: 15_000,
    });
    const held = (await status()).held.find((h) => h.service === "web")!;
    assert.equal(held.instances.length, 3);
    assert.equal((await upstream()).length, 3, "still routing to every instance");
    assert.equal(await edge.metric("templater_held_instances", { reason: "consul-restarted" }), 3);
    await delay(2_000); // the registrator's resync would come about now
    for (let i = 0; i < 3; i++) await register(i);
    await waitFor(async () => (await status()).held.length === 0, { what: "nothing held once refilled" });
    assert.equal((await upstream()).length, 3);
  });

  it("panic: every instance critical at once keeps the last routed set, with a warning and a metric", async () => {
    for (let i = 0; i < 3; i++) await consulCall(consul.url, "PUT", `/v1/agent/check/fail/service:web-${i}`);
    await waitFor(
      async () =>
        (await status()).services
          .find((s) => s.name === "web")
          ?.instances.every((i) => i.status === "critical") &&
        (await status()).held.some((h) => h.reason === "panic"),
      { what: "every web instance critical, held in panic mode" },
    );
    assert.equal((await upstream()).length, 3);
    assert.equal(await edge.metric("templater_held_instances", { reason: "panic" }), 3);
    assert.ok((await edge.logLines()).some((l) => String(l.msg).includes("panic mode")));
    // One recovers: routing follows the checks again (the other two leave).
    await consulCall(consul.url, "PUT", "/v1/agent/check/pass/service:web-0");
    await waitFor(async () => (await upstream()).length === 1, { what: "only web-0 routed" });
    assert.equal((await status()).held.length, 0);
    for (let i = 1; i < 3; i++) await consulCall(consul.url, "PUT", `/v1/agent/check/pass/service:web-${i}`);
    await waitFor(async () => (await upstream()).length === 3, { what: "3 routed again" });
  });

  it("served every request throughout (0 failed)", async () => {
    const r = await load.stop();
    assert.ok(r.ok > 100, `only ${r.ok} requests answered`);
    assert.equal(r.failed, 0, JSON.stringify(r.failures.slice(0, 5)));
    console.log(`# load: ${r.ok} ok, ${r.failed} failed over ${Math.round(r.durationMs / 1000)} s`);
  });
});
