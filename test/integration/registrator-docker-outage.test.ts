// The registrator when the Docker engine goes away: unreachable at start, gone mid-run, and
// an event stream cut and resumed. The real engine cannot be made to vanish on demand (and
// is shared), so the registrator talks to it through a unix-socket proxy the test stops and
// starts (test/helpers/docker-proxy.ts); everything behind the proxy is real.

import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import type { Fields } from "../../lib/log.ts";
import { startConsul, type ConsulHandle } from "../helpers/consul.ts";
import { createNetwork, docker, type TestNetwork } from "../helpers/docker.ts";
import { dockerProxy } from "../helpers/docker-proxy.ts";
import {
  newRun,
  ownedIds,
  runWorkload,
  startTestRegistrator,
  type TestRegistrator,
} from "../helpers/registrator.ts";
import { testScope } from "../helpers/scope.ts";
import { waitFor } from "../helpers/wait.ts";
import type { Workload, WorkloadOptions } from "../helpers/workload.ts";

describe("registrator with the Docker engine going away", { timeout: 180_000 }, () => {
  const scope = testScope();
  const run = newRun();
  const proxy = dockerProxy(scope);
  const logs: Fields[] = [];
  let consul: ConsulHandle;
  let net: TestNetwork;
  let reg: TestRegistrator;
  let identity: string;
  let early: Workload;
  const workload = (o: WorkloadOptions = {}) => runWorkload(scope, run, net.name, o);
  const idOf = (w: Workload) => `${w.name}:8080`;
  const owned = () => ownedIds(consul.client, identity);
  const unreachableLines = () =>
    logs.filter((l) => l.msg === "docker unreachable; retrying until it answers");

  before(async () => {
    net = await createNetwork(scope);
    consul = await startConsul(scope, { network: net });
  });

  it("unreachable at start: waits for the engine, logs it once, then registers what runs", async () => {
    early = await workload({ labels: { SERVICE_NAME: "outage" } });
    await proxy.refuse(); // the socket is there, the engine behind it hangs up
    // No identity given: the registrator must ask the engine for its ID before anything else.
    const starting = startTestRegistrator(scope, {
      consul,
      run,
      identity: "",
      retryMaxMs: 200,
      logs,
      dockerSocket: proxy.socketPath,
    });
    await waitFor(() => proxy.refused >= 4, { what: "several failed attempts", timeoutMs: 15_000 });
    assert.equal(unreachableLines().length, 1, "logged once, not once per attempt");
    await proxy.start();
    reg = await starting;
    identity = reg.identity;
    assert.equal(
      identity,
      (await docker.info()).ID,
      "the identity is the engine's ID, read once it answered",
    );
    await reg.synced;
    await waitFor(async () => (await owned()).join() === idOf(early), {
      what: "the early container registered",
    });
    assert.equal(unreachableLines().length, 1, "the outage is logged once");
    assert.ok(
      proxy.requests.some((r) => /^GET \/[^ ]*events/.test(r)),
      "the event stream opened through the proxy",
    );
  });

  it("gone mid-run: reports Docker down, keeps Consul as it is, and catches up on what happened meanwhile", async () => {
    const stays = await workload({ labels: { SERVICE_NAME: "outage" } });
    await waitFor(async () => (await owned()).length === 2, { what: "two registered" });
    await proxy.stop();
    await waitFor(() => !reg.health().docker, { what: "Docker seen as down", timeoutMs: 15_000 });
    assert.deepEqual(await owned(), [idOf(stays), idOf(early)].sort(), "an outage deregisters nothing");
    await early.container.remove({ force: true });
    const added = await workload({ labels: { SERVICE_NAME: "outage" } });
    await proxy.start();
    await waitFor(async () => (await owned()).join() === [idOf(stays), idOf(added)].sort().join(), {
      what: "Consul to match Docker again",
      timeoutMs: 30_000,
    });
    await waitFor(() => reg.health().docker, { what: "Docker seen as up" });
  });

  it("an event stream cut mid-run resumes from `since`: a SIGTERM sent during the cut still drains", async () => {
    // Traps SIGTERM and keeps running for a minute: while it drains, Docker lists it as
    // running, so only the missed kill event, replayed from `since`, can take it out.
    const drainer = await workload({
      labels: { SERVICE_NAME: "outage-drain" },
      exposed: ["8080/tcp"],
      stopTimeout: 90,
      cmd: ["sh", "-c", "trap 'sleep 60; exit 0' TERM; httpd -f -p 8080 & wait; wait"],
    });
    await waitFor(async () => (await owned()).includes(idOf(drainer)), { what: "the drainer registered" });
    const streamsBefore = proxy.requests.filter((r) => /events/.test(r)).length;
    await proxy.stop();
    await waitFor(() => !reg.health().docker, { what: "Docker seen as down", timeoutMs: 15_000 });
    await drainer.container.kill({ signal: "SIGTERM" });
    await proxy.start();
    await waitFor(async () => !(await owned()).includes(idOf(drainer)), {
      what: "the draining container out of Consul",
      timeoutMs: 30_000,
    });
    assert.equal(
      (await drainer.container.inspect()).State.Running,
      true,
      "still running: only the event tells",
    );
    const resumed = proxy.requests.filter((r) => /events/.test(r)).slice(streamsBefore);
    assert.ok(resumed.length >= 1, "the stream was opened again");
    assert.ok(
      resumed.every((r) => /[?&]since=\d+(\.\d+)?(&|$)/.test(r)),
      `every reopened stream asks for events since the last one seen: ${resumed.join(", ")}`,
    );
  });
});
