// Failures around the registrator: it restarts, Consul restarts empty, Consul is
// away for a minute. Real Docker, real Consul (on a fixed host port, so it keeps
// its address across restarts).
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { startConsul, type ConsulHandle } from "../helpers/consul.ts";
import { createNetwork, docker, type TestNetwork } from "../helpers/docker.ts";
import {
  catalogInstances,
  completedFullSyncs,
  freePort,
  newRun,
  ownedIds,
  runWorkload,
  startTestRegistrator,
  type TestRegistrator,
} from "../helpers/registrator.ts";
import { testScope } from "../helpers/scope.ts";
import { delay, waitFor } from "../helpers/wait.ts";
import type { Workload, WorkloadOptions } from "../helpers/workload.ts";

const ms = 1_000_000;

/** Docker events a registrator has received, all actions together. */
async function eventsSeen(r: TestRegistrator): Promise<number> {
  const { values } = await r.metrics.events.get();
  return values.reduce((sum, v) => sum + v.value, 0);
}
const resyncMs = 3000;

describe("registrator recovery", { timeout: 300_000 }, () => {
  const scope = testScope();
  const run = newRun();
  const identity = `recovery-${run}`;
  let consul: ConsulHandle;
  let net: TestNetwork;
  let reg: TestRegistrator;
  const workload = (o: WorkloadOptions = {}) => runWorkload(scope, run, net.name, o);
  const idOf = (w: Workload) => `${w.name}:8080`;
  const owned = () => ownedIds(consul.client, identity);
  const consulContainer = () => docker.getContainer(consul.container.getId());
  const consulAnswers = () =>
    waitFor(async () => /:\d+/.test(String(await consul.client.status.leader())), {
      what: "Consul leader",
      timeoutMs: 30_000,
      intervalMs: 100,
    });
  const live: Workload[] = [];

  before(async () => {
    net = await createNetwork(scope);
    consul = await startConsul(scope, { network: net, hostPort: await freePort() });
  });

  it("registrator stopped, containers removed and started, restarted → Consul matches Docker; a foreign entry is untouched", async () => {
    const first = await startTestRegistrator(scope, { consul, run, identity, resyncMs });
    await first.synced;
    const [k1, k2] = await Promise.all([
      workload({ labels: { SERVICE_NAME: "rs" } }),
      workload({ labels: { SERVICE_NAME: "rs" } }),
    ]);
    await waitFor(async () => (await owned()).length === 2, { what: "two registered" });
    await consul.client.agent.service.register({
      name: "rs",
      id: "rs-by-hand",
      address: "10.9.9.9",
      port: 1,
    });

    await first.stop();
    const eventsAtStop = await eventsSeen(first);
    assert.deepEqual(await owned(), [idOf(k1!), idOf(k2!)].sort(), "stopping deregisters nothing");

    await k1!.container.remove({ force: true });
    const [k3, k4] = await Promise.all([
      workload({ labels: { SERVICE_NAME: "rs" } }),
      workload({ labels: { SERVICE_NAME: "rs" } }),
    ]);
    // Docker has done its part (k1 gone, k3 and k4 running) and the stopped registrator saw none of it.
    const running = async (w: Workload) => (await w.container.inspect()).State.Running;
    assert.deepEqual([await running(k3!), await running(k4!)], [true, true]);
    await assert.rejects(k1!.container.inspect(), /no such container/i);
    assert.equal(await eventsSeen(first), eventsAtStop, "the stopped registrator received no event");
    assert.deepEqual(await owned(), [idOf(k1!), idOf(k2!)].sort(), "nobody watching: nothing changed yet");

    reg = await startTestRegistrator(scope, { consul, run, identity, resyncMs, retryMaxMs: 1000 });
    await reg.synced;
    assert.deepEqual(await owned(), [k2!, k3!, k4!].map(idOf).sort());
    const foreign = (await catalogInstances(consul.client, "rs")).find((i) => i.id === "rs-by-hand");
    assert.deepEqual([foreign?.address, foreign?.port, foreign?.meta], ["10.9.9.9", 1, {}]);
    assert.ok(
      !reg.logs.some((l) => l.msg === "registered service instance" && l.id === idOf(k2!)),
      "the surviving instance was adopted, not re-registered",
    );
    live.push(k2!, k3!, k4!);
  });

  it("Consul restarted empty → every instance is back within one resync", async () => {
    const hc = await workload({
      labels: { SERVICE_NAME: "rs-hc" },
      healthcheck: { Test: ["CMD-SHELL", "true"], Interval: 200 * ms, Retries: 1 },
    });
    live.push(hc);
    await waitFor(async () => (await catalogInstances(consul.client, "rs-hc"))[0]?.passing, {
      what: "rs-hc passing",
    });
    const expected = live.map(idOf).sort();
    assert.deepEqual(await owned(), expected);

    await consulContainer().restart({ t: 1 });
    await consulAnswers();
    const syncsBefore = await completedFullSyncs(reg);
    assert.deepEqual(await owned(), [], "the agent restarted empty");
    await waitFor(async () => (await owned()).join() === expected.join(), {
      what: "everything re-registered",
      timeoutMs: 4 * resyncMs + 10_000,
      intervalMs: 100,
    });
    // Counted in resyncs, not milliseconds: restored by the first full sync after Consul
    // answered (a second one may have completed by the time the poll saw the result).
    const syncs = (await completedFullSyncs(reg)) - syncsBefore;
    assert.ok(syncs <= 2, `restored after ${syncs} full syncs (resync every ${resyncMs} ms)`);
    await waitFor(async () => (await catalogInstances(consul.client, "rs-hc"))[0]?.passing, {
      what: "rs-hc passing again",
    });
  });

  it("Consul down for 60 s → the registrator stays up, logs it once, and restores everything on return", async () => {
    const before = reg.logs.length;
    await consulContainer().stop({ t: 1 });
    const downAt = Date.now();
    await waitFor(() => !reg.health().consul, { what: "outage noticed", timeoutMs: resyncMs + 3000 });

    // Docker keeps changing meanwhile.
    const removed = live.shift()!;
    await removed.container.remove({ force: true });
    const added = await workload({ labels: { SERVICE_NAME: "rs" } });
    live.push(added);

    await delay(60_000 - (Date.now() - downAt));
    const h = reg.health();
    assert.deepEqual([h.consul, h.docker], [false, true], "alive, and knows Consul is away");
    await consulContainer().start();
    await consulAnswers();
    const syncsBefore = await completedFullSyncs(reg);
    const expected = live.map(idOf).sort();
    await waitFor(async () => (await owned()).join() === expected.join(), {
      what: "restored after the outage",
      timeoutMs: 4 * resyncMs + 10_000,
      intervalMs: 100,
    });
    const syncs = (await completedFullSyncs(reg)) - syncsBefore;
    assert.ok(syncs <= 2, `restored after ${syncs} full syncs once Consul answered`);
    const outage = reg.logs.slice(before);
    assert.equal(outage.filter((l) => l.msg === "consul unreachable; retrying until it answers").length, 1);
    assert.equal(outage.filter((l) => l.msg === "consul reachable").length, 1);
    assert.ok(!(await owned()).includes(idOf(removed)));
  });
});
