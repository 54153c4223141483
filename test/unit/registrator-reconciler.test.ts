// The reconciler's logic against in-memory Docker and Consul (test/helpers/registrator-fakes.ts):
// ownership, draining, health, outages, event-stream reconnects, races with full syncs.
// The same behaviours are checked against the real Docker and Consul in test/integration.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, it } from "node:test";
import { createLogger, type Fields } from "../../lib/log.ts";
import { createMetrics } from "../../services/registrator/src/metrics.ts";
import { Reconciler } from "../../services/registrator/src/reconciler.ts";
import { ContainerTable } from "../../services/registrator/src/state/containers.ts";
import { RegistryRejected } from "../../services/registrator/src/consul/registry.ts";
import type { ContainerFacts, MappingOptions } from "../../services/registrator/src/core/types.ts";
import {
  containerEvent,
  facts,
  FakeDocker,
  FakeRegistry,
  mappingOptions,
} from "../helpers/registrator-fakes.ts";
import { delay, waitFor } from "../helpers/wait.ts";

interface Rig {
  docker: FakeDocker;
  registry: FakeRegistry;
  r: Reconciler;
  logs: Fields[];
}

const running: Reconciler[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.stop()));
});

function rig(
  opts: {
    mapping?: Partial<MappingOptions>;
    resyncMs?: number;
    docker?: FakeDocker;
    registry?: FakeRegistry;
  } = {},
): Rig {
  const docker = opts.docker ?? new FakeDocker();
  const registry = opts.registry ?? new FakeRegistry();
  const logs: Fields[] = [];
  const r = new Reconciler({
    docker,
    registry,
    mapping: mappingOptions(opts.mapping),
    resyncMs: opts.resyncMs ?? 3_600_000,
    retryMaxMs: 100,
    retryInitialMs: 10,
    ready: { intervalMs: 10, timeoutMs: 100, concurrency: 4 },
    log: createLogger({ service: "test", level: "debug", write: (l) => logs.push(JSON.parse(l) as Fields) }),
    metrics: createMetrics({ defaultMetrics: false }),
  });
  return { docker, registry, r, logs };
}

async function started(x: Rig): Promise<Rig> {
  running.push(x.r);
  x.r.start();
  await x.r.synced;
  return x;
}

const ids = (reg: FakeRegistry) => [...reg.services.keys()].sort();

/** Starts a container, waits for its instance, sends SIGTERM, waits until the instance is gone. */
async function startThenDrain(x: Rig, name: string): Promise<ContainerFacts> {
  const c = x.docker.add(facts({ name }));
  x.docker.emit(containerEvent("start", c));
  await waitFor(() => x.registry.get(`${name}:8080`), { what: "registration", timeoutMs: 2000 });
  x.docker.emit(containerEvent("kill", c, { signal: "15" }));
  await waitFor(() => !x.registry.get(`${name}:8080`), { what: "deregistration", timeoutMs: 2000 });
  return c;
}

/** Holds the registry's list() until the returned function is called. */
function holdList(reg: FakeRegistry): () => void {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const list = reg.list.bind(reg);
  reg.list = async (identity) => {
    await gate;
    return list(identity);
  };
  return open;
}

describe("reconciler: start-up sync and ownership", () => {
  it("registers running containers, removes its own stale entries, leaves everyone else's alone", async () => {
    const x = rig();
    const web = x.docker.add(facts({ name: "web", labels: { SERVICE_NAME: "web" } }));
    x.docker.add(facts({ name: "stopped", running: false }));
    x.registry.addForeign("web-by-hand", "web"); // same service name, not ours
    await x.registry.register({
      ...(await import("../../services/registrator/src/core/instances.ts")).containerInstances(
        facts({ name: "old" }),
        mappingOptions({ identity: "engine-2" }),
      ).instances[0]!,
    }); // another registrator's
    const stale = facts({ name: "gone" });
    await x.registry.register(
      (await import("../../services/registrator/src/core/instances.ts")).containerInstances(
        stale,
        mappingOptions(),
      ).instances[0]!,
    );
    await started(x);
    assert.deepEqual(ids(x.registry), ["old:8080", "web-by-hand", "web:8080"]);
    assert.equal(x.registry.get("web:8080")!.meta.dockside_container, web.id);
    assert.equal(x.registry.get("old:8080")!.meta.dockside_owner, "engine-2");
  });

  it("never overwrites a foreign registration that has the same ID", async () => {
    const x = rig();
    x.docker.add(facts({ name: "a", labels: { SERVICE_ID: "taken" } }));
    x.registry.addForeign("taken", "someone");
    await started(x);
    assert.equal(x.registry.get("taken")!.name, "someone");
    assert.ok(x.logs.some((l) => /already registered in Consul by someone else/.test(String(l.reason))));
  });

  it("two containers with one SERVICE_ID: exactly one instance, the older container's", async () => {
    const x = rig();
    const older = x.docker.add(facts({ labels: { SERVICE_ID: "dup" }, created: "2026-01-01T00:00:00Z" }));
    x.docker.add(facts({ labels: { SERVICE_ID: "dup" }, created: "2026-03-01T00:00:00Z" }));
    await started(x);
    assert.deepEqual(ids(x.registry), ["dup"]);
    assert.equal(x.registry.get("dup")!.meta.dockside_container, older.id);
  });
});

describe("reconciler: events", () => {
  it("start registers, SIGTERM takes it out at once and keeps it out while it drains, start brings it back", async () => {
    const x = await started(rig());
    const c = await startThenDrain(x, "d");
    await x.r.fullSync(); // still running (draining): a resync must not put it back
    assert.equal(x.registry.get("d:8080"), undefined);
    x.docker.emit(containerEvent("start", c));
    await waitFor(() => x.registry.get("d:8080"), { what: "registration after restart", timeoutMs: 2000 });
  });

  it("a drain without a start event ends when Docker shows a new run", async () => {
    const x = await started(rig());
    const c = await startThenDrain(x, "r");
    c.startedAt = "2026-06-01T00:00:00Z"; // restarted; its start event was missed
    await x.r.fullSync();
    assert.ok(x.registry.get("r:8080"));
  });

  it("die, destroy and SIGKILL remove it; other signals do not", async () => {
    const x = await started(rig());
    const a = x.docker.add(facts({ name: "a", healthcheck: true, health: "healthy" }));
    const b = x.docker.add(facts({ name: "b" }));
    await x.r.fullSync();
    x.docker.emit(containerEvent("kill", a, { signal: "1" }));
    // A later event of the same container is handled after the SIGHUP (one queue per
    // container): once it shows, the SIGHUP's effect, if any, has happened too.
    a.health = "unhealthy";
    x.docker.emit(containerEvent("health_status: unhealthy", a));
    await waitFor(() => x.registry.get("a:8080")?.checks["service:a:8080:health"] === "critical", {
      what: "the event after the SIGHUP handled",
      timeoutMs: 2000,
    });
    assert.equal(x.registry.get("a:8080")?.meta.dockside_container, a.id, "SIGHUP is not a stop");
    x.docker.emit(containerEvent("kill", a, { signal: "9" }));
    await waitFor(() => !x.registry.get("a:8080"), { what: "a removed", timeoutMs: 2000 });
    b.running = false;
    x.docker.emit(containerEvent("die", b, { exitCode: "137" }));
    await waitFor(() => !x.registry.get("b:8080"), { what: "b removed", timeoutMs: 2000 });
  });

  it("health_status drives the TTL check: critical, passing, critical", async () => {
    const x = await started(rig());
    const c = x.docker.add(facts({ name: "h", healthcheck: true, health: "starting" }));
    x.docker.emit(containerEvent("start", c));
    const check = "service:h:8080:health";
    const status = () => x.registry.get("h:8080")?.checks[check];
    await waitFor(() => status() === "critical", { what: "critical while starting", timeoutMs: 2000 });
    c.health = "healthy";
    x.docker.emit(containerEvent("health_status: healthy", c));
    await waitFor(() => status() === "passing", { what: "passing", timeoutMs: 2000 });
    c.health = "unhealthy";
    x.docker.emit(containerEvent("health_status: unhealthy", c));
    await waitFor(() => status() === "critical", { what: "critical", timeoutMs: 2000 });
  });

  it("ignores containers outside the label filter", async () => {
    const x = await started(rig({ mapping: { labelFilter: [{ key: "mine" }] } }));
    const other = x.docker.add(facts({ name: "other" }));
    const mine = x.docker.add(facts({ name: "mine", labels: { mine: "1" } }));
    x.docker.emit(containerEvent("start", other));
    x.docker.emit(containerEvent("start", mine));
    await waitFor(() => x.registry.get("mine:8080"), { what: "mine", timeoutMs: 2000 });
    await x.r.fullSync();
    assert.deepEqual(ids(x.registry), ["mine:8080"]);
  });

  it("an event-driven registration during a full sync is not undone by that sync's older snapshot", async () => {
    const x = await started(rig());
    const open = holdList(x.registry);
    const sync = x.r.fullSync(); // Docker listed now (no container yet); Consul listed after the gate
    await delay(10);
    const c = x.docker.add(facts({ name: "late" }));
    x.docker.emit(containerEvent("start", c));
    await waitFor(() => x.registry.get("late:8080"), { what: "event registration", timeoutMs: 2000 });
    open();
    await sync;
    assert.ok(x.registry.get("late:8080"), "still registered after the full sync");
  });

  it("events that arrive before Consul's state was first read are applied against that state", async () => {
    const x = rig();
    const c = x.docker.add(facts({ name: "early" }));
    const { containerInstances } = await import("../../services/registrator/src/core/instances.ts");
    await x.registry.register(containerInstances(c, mappingOptions()).instances[0]!); // from an earlier run
    const open = holdList(x.registry);
    running.push(x.r);
    x.r.start();
    await waitFor(() => x.docker.streams === 1, { what: "event stream", timeoutMs: 2000 });
    x.docker.emit(containerEvent("kill", c, { signal: "15" })); // stopping, before the first sync
    await delay(20);
    open();
    await x.r.synced;
    await waitFor(() => !x.registry.get("early:8080"), {
      what: "the draining instance removed",
      timeoutMs: 2000,
    });
  });

  it("reconnects a broken event stream and resyncs at once", async () => {
    const x = await started(rig());
    x.docker.breakStreams();
    const c = x.docker.add(facts({ name: "missed" })); // its start event is lost with the stream
    const got = await waitFor(() => x.registry.get("missed:8080"), {
      what: "resync after reconnect",
      timeoutMs: 2000,
    });
    assert.equal(got.meta.dockside_container, c.id);
    assert.equal(x.docker.streams, 1);
  });
});

describe("reconciler: Consul trouble", () => {
  it("retries while Consul is down, logs the outage once, restores everything when it returns empty", async () => {
    const x = await started(rig());
    const a = x.docker.add(facts({ name: "a", healthcheck: true, health: "healthy" }));
    await x.r.fullSync();
    x.registry.failing = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    const b = x.docker.add(facts({ name: "b" }));
    x.docker.emit(containerEvent("start", b));
    await waitFor(() => !x.r.health().consul, { what: "consul down", timeoutMs: 2000 });
    const failedFrom = x.registry.calls.length;
    await waitFor(() => x.registry.calls.length >= failedFrom + 4, {
      what: "several more failed Consul calls (retries at the 100 ms cap)",
      timeoutMs: 5000,
    });
    assert.equal(x.logs.filter((l) => l.msg === "consul unreachable; retrying until it answers").length, 1);
    x.registry.wipe();
    x.registry.failing = undefined;
    await waitFor(() => x.registry.get("a:8080") && x.registry.get("b:8080"), {
      what: "restored",
      timeoutMs: 2000,
    });
    assert.equal(x.registry.get("a:8080")!.checks["service:a:8080:health"], "passing");
    assert.equal(x.registry.get("a:8080")!.meta.dockside_container, a.id);
    assert.equal(x.logs.filter((l) => l.msg === "consul reachable").length, 2, "up at start, up again");
  });

  it("Consul restarted empty while up: the next resync restores it", async () => {
    const x = await started(rig({ resyncMs: 50 }));
    x.docker.add(facts({ name: "a" }));
    x.docker.add(facts({ name: "b", healthcheck: true, health: "healthy" }));
    await waitFor(() => x.registry.services.size === 2, { what: "registered", timeoutMs: 2000 });
    x.registry.wipe();
    await waitFor(() => x.registry.services.size === 2, { what: "restored", timeoutMs: 2000 });
  });

  it("a status update for a check Consul lost re-registers the instance", async () => {
    const x = await started(rig());
    const c = x.docker.add(facts({ name: "h", healthcheck: true, health: "starting" }));
    await x.r.fullSync();
    x.registry.wipe();
    c.health = "healthy";
    x.docker.emit(containerEvent("health_status: healthy", c));
    await waitFor(() => x.registry.get("h:8080")?.checks["service:h:8080:health"] === "passing", {
      what: "re-registered passing",
      timeoutMs: 2000,
    });
  });

  it("an instance Consul refuses is logged once; the others register", async () => {
    const x = rig();
    const register = x.registry.register.bind(x.registry);
    x.registry.register = async (i) => {
      if (i.name === "bad") throw new RegistryRejected("Invalid service address");
      return register(i);
    };
    x.docker.add(facts({ name: "bad", labels: { SERVICE_NAME: "bad" } }));
    x.docker.add(facts({ name: "good" }));
    await started(x);
    await x.r.fullSync();
    assert.deepEqual(ids(x.registry), ["good:8080"]);
    assert.equal(x.logs.filter((l) => /Consul refused instance "bad:8080"/.test(String(l.reason))).length, 1);
    assert.equal(x.r.health().consul, true);
  });
});

describe("reconciler: bad input and heartbeats", () => {
  it("logs each problem of a container once, however often it is looked at", async () => {
    const x = rig();
    x.docker.add(facts({ name: "typo", labels: { SERVICE_CHECK_HTTTP: "/h" } }));
    await started(x);
    await x.r.fullSync();
    await x.r.fullSync();
    const lines = x.logs.filter((l) => l.msg === "container setting ignored");
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.container, "typo");
    assert.match(String(lines[0]!.reason), /SERVICE_CHECK_HTTTP/);
    assert.ok(x.registry.get("typo:8080"), "the container itself still registers");
  });

  it("re-sends TTL statuses before they expire", async () => {
    const x = await started(rig({ mapping: { checkTtlMs: 60 } }));
    x.docker.add(facts({ name: "h", healthcheck: true, health: "healthy" }));
    await x.r.fullSync();
    const before = x.registry.calls.filter((c) => c.startsWith("status")).length;
    await delay(40);
    await x.r.fullSync();
    assert.equal(x.registry.calls.filter((c) => c.startsWith("status")).length, before + 1);
  });

  it("stop() leaves every registration in place", async () => {
    const x = await started(rig());
    x.docker.add(facts({ name: "keep" }));
    await x.r.fullSync();
    await x.r.stop();
    assert.deepEqual(ids(x.registry), ["keep:8080"]);
    assert.equal(x.registry.calls.filter((c) => c.startsWith("deregister")).length, 0);
  });
});

describe("reconciler: readiness (SERVICE_READY_HTTP)", () => {
  /** A loopback /readyz that answers 200; the container's address is 127.0.0.1. */
  async function readyServer(): Promise<{ port: number; close: () => Promise<void> }> {
    const server = http.createServer((_req, res) => res.writeHead(200, { connection: "close" }).end());
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    return { port, close: () => new Promise<void>((r) => server.close(() => r())) };
  }
  const readyFacts = (port: number) =>
    facts({
      name: "ready",
      labels: { SERVICE_READY_HTTP: "/readyz" },
      networks: { bridge: "127.0.0.1" },
      exposed: [`${port}/tcp`],
      startedAt: new Date().toISOString(),
    });

  it("a 2xx sets the check passing with the facts of the start's inspection: one inspect, not two", async () => {
    const srv = await readyServer();
    try {
      const x = await started(rig());
      const c = x.docker.add(readyFacts(srv.port));
      const before = x.docker.inspectCalls;
      x.docker.emit(containerEvent("start", c));
      const id = `ready:${srv.port}`;
      await waitFor(() => Object.values(x.registry.get(id)?.checks ?? {})[0] === "passing", {
        what: "passing",
        timeoutMs: 2000,
      });
      assert.equal(x.docker.inspectCalls - before, 1);
    } finally {
      await srv.close();
    }
  });

  it("kept facts: only of the run known, and never across an event heard during or after the inspection", () => {
    const t = new ContainerTable();
    const f = facts({ name: "kept", startedAt: "2026-01-01T00:02:00.000Z" });
    const inspectOnce = (heardMeanwhile: boolean) => {
      const i = t.inspecting(f.id);
      if (heardMeanwhile) t.heard(f.id);
      t.remember(f);
      t.inspected(i, f);
    };
    inspectOnce(false);
    assert.equal(t.unchanged(f.id, f.startedAt), f);
    assert.equal(t.unchanged(f.id, "2026-01-01T00:03:00.000Z"), undefined, "another run");
    t.heard(f.id);
    assert.equal(t.unchanged(f.id, f.startedAt), undefined, "an event after the inspection");
    inspectOnce(true);
    assert.equal(t.unchanged(f.id, f.startedAt), undefined, "an event during the inspection");
    inspectOnce(false);
    t.drain(f.id);
    assert.equal(t.unchanged(f.id, f.startedAt), undefined, "draining");
    t.started(f.id);
    inspectOnce(false);
    t.forget(f.id);
    assert.equal(t.unchanged(f.id, f.startedAt), undefined, "forgotten");
    assert.deepEqual(t.ids(), [], "nothing left behind");
  });
});
