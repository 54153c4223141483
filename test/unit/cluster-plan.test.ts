import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  agentConfig,
  clusterPlan,
  nodeIdFor,
  registratorPolicy,
  spreadInstances,
  templaterPolicy,
} from "../../scripts/lab/cluster/plan.ts";
import { joinCluster } from "../../scripts/lab/cluster/status.ts";

const hosts = ["host-1", "host-2", "host-3"];

test("spreadInstances: 9 over 3 hosts is 3 each, numbered 1..9", () => {
  const { start, stop } = spreadInstances("web", 9, hosts, []);
  assert.deepEqual(stop, []);
  for (const h of hosts) assert.equal(start.filter((s) => s.host === h).length, 3);
  assert.deepEqual(
    start.map((s) => s.name).sort(),
    Array.from({ length: 9 }, (_, i) => `web-${i + 1}`).sort(),
  );
});

test("spreadInstances: scaling keeps running instances where they are", () => {
  const running = [
    { host: "host-1", name: "web-1" },
    { host: "host-2", name: "web-2" },
    { host: "host-3", name: "web-3" },
  ];
  const up = spreadInstances("web", 5, hosts, running);
  assert.deepEqual(up.stop, []);
  assert.deepEqual(up.start, [
    { host: "host-1", name: "web-4" },
    { host: "host-2", name: "web-5" },
  ]);
  const down = spreadInstances("web", 1, hosts, running);
  assert.deepEqual(down.start, []);
  assert.deepEqual(down.stop.map((s) => s.name).sort(), ["web-2", "web-3"]);
});

test("spreadInstances: after the change every host holds n/hosts ±1 and names are unique (property)", () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ host: fc.constantFrom(...hosts), idx: fc.integer({ min: 1, max: 40 }) }), {
        maxLength: 30,
      }),
      fc.integer({ min: 0, max: 40 }),
      (raw, n) => {
        const seen = new Set<number>();
        const running = raw
          .filter((r) => !seen.has(r.idx) && seen.add(r.idx))
          .map((r) => ({ host: r.host, name: `web-${r.idx}` }));
        const { start, stop } = spreadInstances("web", n, hosts, running);
        const after = [...running.filter((r) => !stop.includes(r)), ...start];
        assert.equal(after.length, n);
        assert.equal(new Set(after.map((a) => a.name)).size, n);
        const counts = hosts.map((h) => after.filter((a) => a.host === h).length);
        assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, JSON.stringify(counts));
      },
    ),
  );
});

test("clusterPlan: distinct names and addresses per lab; fixed node IDs", () => {
  const a = clusterPlan();
  const b = clusterPlan({ prefix: "dockside-cluster-test", subnet: "10.213.2" });
  const members = [...a.servers, ...a.hosts, a.edgeAgent];
  assert.equal(new Set(members.map((m) => m.ip)).size, members.length);
  assert.equal(new Set(members.map((m) => m.nodeId)).size, members.length);
  assert.notEqual(a.hosts[0]!.container, b.hosts[0]!.container);
  assert.equal(nodeIdFor("x", "host-1"), nodeIdFor("x", "host-1"));
  assert.match(a.hosts[0]!.nodeId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.throws(() => clusterPlan({ subnet: "10.213" }), /a\.b\.c/);
});

test("agentConfig: secure by default (deny, TLS verified both ways, HTTPS only, gossip key)", () => {
  const plan = clusterPlan();
  const secrets = { gossipKey: "k3y", agentToken: "agent-secret", managementToken: "mgmt" };
  const server = agentConfig(plan, plan.servers[0]!, "server", secrets);
  const client = agentConfig(plan, plan.hosts[0]!, "client", { gossipKey: "k3y", agentToken: "a" });
  for (const cfg of [server, client]) {
    assert.match(cfg, /default_policy = "deny"/);
    assert.match(cfg, /verify_incoming_rpc = true/);
    assert.match(cfg, /verify_server_hostname = true/);
    assert.match(cfg, /ports \{ http = -1, https = 8501 \}/);
    assert.match(cfg, /encrypt = "k3y"/);
  }
  assert.match(server, /bootstrap_expect = 3/);
  assert.match(server, /master = "mgmt"/);
  assert.doesNotMatch(client, /master/);
  assert.match(client, /client_addr = "127\.0\.0\.1"/);
  assert.match(client, /retry_join = \["10\.213\.1\.11", "10\.213\.1\.12", "10\.213\.1\.13"\]/);
});

test("policies: the registrator writes services only, the templater only reads", () => {
  const r = registratorPolicy("host-1").rules;
  assert.match(r, /service_prefix "" \{ policy = "write" \}/);
  assert.doesNotMatch(r, /key|acl|operator|node_prefix "" \{ policy = "write"/);
  assert.doesNotMatch(templaterPolicy.rules, /write/);
  assert.match(templaterPolicy.rules, /node_prefix "" \{ policy = "read" \}/);
});

test("joinCluster: a passing instance nginx does not route is a problem; a down host's entries are not", () => {
  const s = joinCluster({
    hosts: [
      { host: "host-1", ip: "10.0.0.1", up: true, node: "passing" },
      { host: "host-2", ip: "10.0.0.2", up: false, node: "critical" },
    ],
    instances: [
      { host: "host-1", id: "a", name: "web-1", service: "web", state: "running", status: "Up", port: 3001 },
      { host: "host-1", id: "b", name: "web-2", service: "web", state: "running", status: "Up", port: 3002 },
    ],
    consul: [
      { service: "web", node: "host-1", address: "10.0.0.1", port: 3001, status: "passing" },
      { service: "web", node: "host-1", address: "10.0.0.1", port: 3002, status: "passing" },
      { service: "web", node: "host-2", address: "10.0.0.2", port: 3001, status: "critical" },
    ],
    nginx: new Map([["web", new Set(["10.0.0.1:3001"])]]),
  });
  assert.equal(s.ok, false);
  assert.deepEqual(
    s.rows.map((r) => r.problem),
    ["", "passing but not routed by nginx", ""],
  );
});
