// The pure core: desired vs actual → operations; ID claims; Docker events → effects.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { classifyEvent, signalNumber } from "../../services/registrator/src/core/events.ts";
import { containerInstances } from "../../services/registrator/src/core/instances.ts";
import {
  afterRegistration,
  planChanges,
  resolveClaims,
  type Op,
} from "../../services/registrator/src/core/plan.ts";
import type { Registration, ServiceInstance } from "../../services/registrator/src/core/types.ts";
import { containerEvent, facts, mappingOptions } from "../helpers/registrator-fakes.ts";

function instance(over: Partial<Parameters<typeof facts>[0]> = {}, rtReady = false): ServiceInstance {
  const m = containerInstances(facts(over), mappingOptions(), { draining: false, ready: () => rtReady });
  return m.instances[0]!;
}

/** What Consul would hold after registering `i`, with its checks at the given statuses. */
function held(i: ServiceInstance, statuses: Record<string, string> = {}): Registration {
  const r = afterRegistration(i);
  for (const id of Object.keys(r.checks)) r.checks[id] = statuses[id] ?? i.ttl?.status ?? "critical";
  return r;
}

const kinds = (ops: Op[]) => ops.map((o) => o.kind);

describe("planChanges", () => {
  it("registers what is missing and deregisters what is not wanted", () => {
    const a = instance();
    const b = instance();
    const gone = held(instance());
    const ops = planChanges([a, b], [held(a), gone]);
    assert.deepEqual(
      ops.map((o) => [
        o.kind,
        o.kind === "deregister" ? o.registration.id : o.kind === "register" ? o.instance.id : "",
      ]),
      [
        ["register", b.id],
        ["deregister", gone.id],
      ],
    );
  });
  it("does nothing when Consul already matches", () => {
    const a = instance({ healthcheck: true, health: "healthy" });
    assert.deepEqual(planChanges([a], [held(a)]), []);
  });
  it("re-registers when anything but check status differs", () => {
    const a = instance({ networks: { bridge: "10.0.0.1" } });
    for (const change of [
      (r: Registration) => (r.address = "10.0.0.2"),
      (r: Registration) => (r.port = 1),
      (r: Registration) => (r.tags = ["x"]),
      (r: Registration) => (r.name = "other"),
      (r: Registration) => (r.meta = { ...r.meta, dockside_spec: "0000" }),
    ]) {
      const r = held(a);
      change(r);
      const ops = planChanges([a], [r]);
      assert.deepEqual(kinds(ops), ["register"]);
      assert.equal((ops[0] as { previous?: Registration }).previous, r);
    }
  });
  it("re-registers when a check went missing, and removes checks no longer wanted", () => {
    const withHc = instance({ healthcheck: true, health: "healthy" });
    const r = held(withHc);
    r.checks = {};
    assert.deepEqual(kinds(planChanges([withHc], [r])), ["register"]);
    const same = { id: "a".repeat(64), name: "same", networks: { n: "1.1.1.1" } };
    const before = instance({ ...same, healthcheck: true, health: "healthy" });
    const after = instance({ ...same, healthcheck: false });
    assert.deepEqual(kinds(planChanges([after], [held(before)])), ["register", "remove-check"]);
  });
  it("sets TTL status on its own (a re-registration keeps the old status)", () => {
    const same = { id: "e".repeat(64), name: "same", networks: { n: "1.1.1.1" }, healthcheck: true };
    const starting = instance({ ...same, health: "starting" });
    const healthy = instance({ ...same, health: "healthy" });
    assert.equal(starting.meta.dockside_spec, healthy.meta.dockside_spec);
    const ops = planChanges([healthy], [held(starting)]);
    assert.deepEqual(kinds(ops), ["set-status"]);
    assert.equal((ops[0] as { ttl: { status: string } }).ttl.status, "passing");
    const moved = { ...healthy, address: "9.9.9.9" };
    assert.deepEqual(kinds(planChanges([moved], [held(starting)])), ["register", "set-status"]);
  });
  it("re-sends a TTL status whose heartbeat is due", () => {
    const a = instance({ healthcheck: true, health: "healthy" });
    assert.deepEqual(kinds(planChanges([a], [held(a)], { refreshDue: () => true })), ["set-status"]);
  });
  it("applying the plan to the actual state yields the desired state (generated)", () => {
    const pool = Array.from({ length: 6 }, (_, n) =>
      instance({ name: `c${n}`, healthcheck: n % 2 === 0, health: n % 3 === 0 ? "healthy" : "starting" }),
    );
    fc.assert(
      fc.property(fc.subarray(pool), fc.subarray(pool), fc.boolean(), (desired, present, drift) => {
        const actual = present.map((p) => {
          const r = held(p);
          if (drift) r.tags = ["drifted"];
          for (const k of Object.keys(r.checks)) r.checks[k] = "critical";
          return r;
        });
        const state = new Map(actual.map((r) => [r.id, structuredClone(r)]));
        for (const op of planChanges(desired, actual)) {
          if (op.kind === "register") {
            const old = state.get(op.instance.id);
            const r = held(op.instance);
            if (old) for (const id of Object.keys(r.checks)) r.checks[id] = old.checks[id] ?? r.checks[id]!;
            state.set(op.instance.id, r);
          } else if (op.kind === "deregister") state.delete(op.registration.id);
          else if (op.kind === "set-status")
            state.get(op.instance.id)!.checks[op.ttl.checkId] = op.ttl.status;
          else if (op.kind === "remove-check") delete state.get(op.serviceId)!.checks[op.checkId];
        }
        assert.deepEqual(
          [...state.values()].sort((a, b) => a.id.localeCompare(b.id)),
          desired.map((d) => held(d)).sort((a, b) => a.id.localeCompare(b.id)),
        );
        assert.deepEqual(planChanges(desired, [...state.values()]), [], "a second plan is empty");
      }),
      { numRuns: 300 },
    );
  });
});

describe("resolveClaims", () => {
  const ctx = { foreignIds: new Set<string>(), currentOwner: () => undefined, created: () => "" };
  it("never takes over an ID someone else registered", () => {
    const a = instance({ labels: { SERVICE_ID: "taken" } });
    const r = resolveClaims([a], { ...ctx, foreignIds: new Set(["taken"]) });
    assert.deepEqual(r.kept, []);
    assert.match(r.rejected[0]!.reason, /already registered in Consul by someone else/);
  });
  it("two containers with one SERVICE_ID: the holder keeps it, else the older", () => {
    const old = instance({ labels: { SERVICE_ID: "dup" }, created: "2026-01-01T00:00:00Z" });
    const young = instance({ labels: { SERVICE_ID: "dup" }, created: "2026-02-01T00:00:00Z" });
    const created = (id: string) => (id === old.containerId ? "2026-01-01" : "2026-02-01");
    const byAge = resolveClaims([young, old], { ...ctx, created });
    assert.deepEqual(
      byAge.kept.map((k) => k.containerId),
      [old.containerId],
    );
    assert.match(byAge.rejected[0]!.reason, /also claimed by container/);
    const byHolder = resolveClaims([young, old], { ...ctx, created, currentOwner: () => young.containerId });
    assert.deepEqual(
      byHolder.kept.map((k) => k.containerId),
      [young.containerId],
    );
  });
  it("an ID held by another running container is not taken by an event", () => {
    const a = instance({ labels: { SERVICE_ID: "dup" } });
    const r = resolveClaims([a], { ...ctx, heldElsewhere: () => "f".repeat(64) });
    assert.deepEqual(r.kept, []);
    assert.match(r.rejected[0]!.reason, /registered for running container ffffffffffff/);
  });
});

describe("classifyEvent", () => {
  const c = facts({ labels: { team: "a" } });
  const opts = { labelFilter: [] };
  it("start, die, destroy, stop, health_status and friends", () => {
    assert.deepEqual(classifyEvent(containerEvent("start", c), opts), { kind: "start", containerId: c.id });
    assert.equal(classifyEvent(containerEvent("die", c, { exitCode: "0" }), opts).kind, "gone");
    assert.equal(classifyEvent(containerEvent("destroy", c), opts).kind, "gone");
    for (const a of [
      "stop",
      "health_status: healthy",
      "health_status: unhealthy",
      "pause",
      "unpause",
      "rename",
    ]) {
      assert.equal(classifyEvent(containerEvent(a, c), opts).kind, "sync", a);
    }
    assert.equal(classifyEvent(containerEvent("exec_start: sh", c), opts).kind, "ignore");
    assert.equal(classifyEvent(containerEvent("attach", c), opts).kind, "ignore");
  });
  it("kill drains on SIGTERM, SIGKILL or the container's own stop signal, not on others", () => {
    assert.deepEqual(classifyEvent(containerEvent("kill", c, { signal: "15" }), opts), {
      kind: "drain",
      containerId: c.id,
      signal: 15,
    });
    assert.equal(classifyEvent(containerEvent("kill", c, { signal: "9" }), opts).kind, "drain");
    assert.equal(
      classifyEvent(containerEvent("kill", c, { signal: "1" }), opts).kind,
      "ignore",
      "HUP reloads",
    );
    const quit = { ...opts, stopSignalOf: () => signalNumber("SIGQUIT") };
    assert.equal(classifyEvent(containerEvent("kill", c, { signal: "3" }), quit).kind, "drain");
  });
  it("reads Action and Actor, never the old status/id fields", () => {
    const ev = {
      status: "start",
      id: "wrong",
      Type: "container",
      Action: "die",
      Actor: { ID: c.id, Attributes: {} },
    };
    assert.deepEqual(classifyEvent(ev, opts), { kind: "gone", containerId: c.id });
  });
  it("follows the label filter for container events; network events name their container", () => {
    const filtered = { labelFilter: [{ key: "team", value: "b" }] };
    assert.equal(classifyEvent(containerEvent("start", c), filtered).kind, "ignore");
    const net = {
      Type: "network",
      Action: "connect",
      Actor: { ID: "net1", Attributes: { container: c.id } },
    };
    assert.deepEqual(classifyEvent(net, filtered), { kind: "sync", containerId: c.id });
    assert.equal(classifyEvent({ ...net, Action: "create" }, opts).kind, "ignore");
  });
  it("signal names and numbers", () => {
    assert.deepEqual(["SIGTERM", "TERM", "15", "sigquit", "", "SIGNOPE"].map(signalNumber), [
      15,
      15,
      15,
      3,
      undefined,
      undefined,
    ]);
  });
});
