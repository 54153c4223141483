// The Consul watcher against a real Consul: it follows registrations and health with two long
// polls, reads instances per node (not per service), and never joins an instance with checks
// older than itself.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, it } from "node:test";
import { createConsulHttp } from "../../lib/consul-client.ts";
import { silentLogger } from "../../lib/log.ts";
import { Reachability } from "../../lib/state-change.ts";
import type { CatalogSnapshot, ServiceAnswer } from "../../services/templater/src/core/catalog.ts";
import { buildView } from "../../services/templater/src/core/view.ts";
import {
  consulCatalogApi,
  maxConsulSockets,
  nodeReadConcurrency,
} from "../../services/templater/src/watch/consul-api.ts";
import {
  ConsulCatalogWatcher,
  type WatcherOptions,
} from "../../services/templater/src/watch/consul-watcher.ts";
import { consulConnection } from "../helpers/consul-connection.ts";
import { startConsul, type ConsulHandle } from "../helpers/consul.ts";
import { testScope } from "../helpers/scope.ts";
import { delay, waitFor } from "../helpers/wait.ts";

/** A Consul HTTP call on a connection of its own (closed after), so it never counts as the watcher's. */
function consulCall(base: string, method: string, p: string, body?: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${p}`, { method, agent: false }, (res) => {
      res.resume();
      res.on("end", () =>
        res.statusCode === 200 ? resolve() : reject(new Error(`${method} ${p}: ${res.statusCode}`)),
      );
    });
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** A watcher on `consul` with the test's timings, on a client of its own; runs until `signal` aborts. */
function startWatcher(
  scope: ReturnType<typeof testScope>,
  consul: ConsulHandle,
  signal: AbortSignal,
  options: Pick<
    WatcherOptions,
    "onSnapshot" | "onRequest" | "wanted" | "serviceWatches" | "serviceWaitMs" | "onService"
  >,
): Promise<void> {
  const client = createConsulHttp(consulConnection({ consulAddr: `${consul.host}:${consul.port}` }), {
    maxSockets: maxConsulSockets + (options.serviceWatches ?? 0),
  });
  scope.defer("consul client", () => client.destroy());
  return new ConsulCatalogWatcher({
    api: consulCatalogApi(client),
    waitMs: 30_000,
    floorMs: 50,
    retryInitialMs: 100,
    retryMaxMs: 1000,
    concurrency: nodeReadConcurrency,
    reach: new Reachability("consul", silentLogger),
    log: silentLogger,
    ...options,
  }).run(signal);
}

describe("Consul catalog watcher", { timeout: 180_000 }, () => {
  const scope = testScope();
  let consul: ConsulHandle;
  const snapshots: CatalogSnapshot[] = [];
  const requests: Record<string, number> = {};
  const controller = new AbortController();
  let running: Promise<void>;

  const view = () => buildView(snapshots.at(-1)!, { routeTag: "http", statuses: ["passing"] });
  const register = (id: string, name: string, status = "passing", node?: string) =>
    node
      ? consulCall(consul.url, "PUT", "/v1/catalog/register", {
          Node: node,
          Address: "10.1.0.1",
          Service: { ID: id, Service: name, Tags: ["http"], Address: "10.2.0.1", Port: 80 },
        })
      : consulCall(consul.url, "PUT", "/v1/agent/service/register", {
          ID: id,
          Name: name,
          Address: "10.0.0.1",
          Port: 80,
          Tags: ["http"],
          Check: { TTL: "600s", Status: status },
        });

  before(async () => {
    consul = await startConsul(scope);
    running = startWatcher(scope, consul, controller.signal, {
      onSnapshot: (s) => snapshots.push(s),
      onRequest: (endpoint) => (requests[endpoint] = (requests[endpoint] ?? 0) + 1),
    });
  });
  after(async () => {
    controller.abort();
    await running;
  });

  it("follows registrations, health changes and deregistrations", async () => {
    await register("web-1", "web");
    await waitFor(() => snapshots.length > 0 && view().view.services.some((s) => s.name === "web"), {
      what: "web in a snapshot",
    });
    await consulCall(consul.url, "PUT", "/v1/agent/check/fail/service:web-1");
    await waitFor(() => view().view.services.find((s) => s.name === "web")?.instances.length === 0, {
      what: "web-1 critical",
    });
    await consulCall(consul.url, "PUT", "/v1/agent/check/pass/service:web-1");
    await waitFor(() => view().view.services.find((s) => s.name === "web")?.instances.length === 1, {
      what: "web-1 passing again",
    });
    await consulCall(consul.url, "PUT", "/v1/agent/service/deregister/web-1");
    await waitFor(() => !view().catalog.services.some((s) => s.name === "web"), { what: "web gone" });
  });

  it("never shows an instance registered as critical as passing (instances and checks are joined consistently)", async () => {
    const from = snapshots.length;
    for (let i = 0; i < 10; i++) await register(`late-${i}`, "late", "critical");
    await waitFor(() => view().catalog.services.find((s) => s.name === "late")?.instances.length === 10, {
      what: "10 late instances",
    });
    for (const s of snapshots.slice(from)) {
      const late = buildView(s, { routeTag: "http", statuses: ["passing"] }).view.services.find(
        (x) => x.name === "late",
      );
      assert.equal(late?.instances.length ?? 0, 0, "a critical instance was routed");
    }
  });

  it("reads instances per node, not per service", async () => {
    for (let i = 0; i < 300; i++) await register(`many-${i}`, `many-${i}`, "passing", `host-${i % 3}`);
    await waitFor(() => view().view.services.filter((s) => s.name.startsWith("many-")).length === 300, {
      what: "300 services",
      timeoutMs: 20_000,
    });
    await delay(300);
    const before = { ...requests };
    const snaps = snapshots.length;
    await register("one-more", "one-more", "passing", "host-0");
    await waitFor(() => view().view.services.some((s) => s.name === "one-more"), {
      what: "one more service",
    });
    await delay(200);
    const delta = (k: string) => (requests[k] ?? 0) - (before[k] ?? 0);
    // 4 nodes (the agent's and host-0..2): one read each per catalog change, whatever the number of services
    const changes = snapshots.length - snaps;
    assert.ok(
      delta("catalog/node") >= 4 && delta("catalog/node") <= 4 * changes,
      `node reads: ${delta("catalog/node")} for ${changes} changes`,
    );
    assert.ok(delta("catalog/services") <= changes + 1, "one catalog long-poll answer per change");
  });
});

describe("Consul catalog watcher, fast path (a long poll per routed service)", { timeout: 180_000 }, () => {
  const scope = testScope();
  let consul: ConsulHandle;
  const snapshots: CatalogSnapshot[] = [];
  const answers: ServiceAnswer[] = [];
  const requests: Record<string, number> = {};
  const controller = new AbortController();
  let running: Promise<void>;
  const opts = { routeTag: "http", statuses: ["passing"] as const };
  const ids = (s: CatalogSnapshot | ServiceAnswer, name: string) =>
    (buildView({ ...s, observedAt: 0 }, opts).catalog.services.find((x) => x.name === name)?.instances ?? [])
      .map((i) => i.id)
      .join(",");
  const register = (id: string) =>
    consulCall(consul.url, "PUT", "/v1/agent/service/register", {
      ID: id,
      Name: "web",
      Address: "10.0.0.1",
      Port: 80,
      Tags: ["http"],
      Check: { TTL: "600s", Status: "passing" },
    });

  before(async () => {
    consul = await startConsul(scope);
    running = startWatcher(scope, consul, controller.signal, {
      wanted: (tags) => tags.includes("http"),
      onSnapshot: (s) => snapshots.push(s),
      serviceWatches: 8,
      onService: (a) => (answers.push(a), true),
      onRequest: (endpoint) => (requests[endpoint] = (requests[endpoint] ?? 0) + 1),
    });
  });
  after(async () => {
    controller.abort();
    await running;
  });

  it("brings an instance change of a watched service as that service's answer, without reading the nodes", async () => {
    await register("web-1");
    await waitFor(() => snapshots.length > 0 && ids(snapshots.at(-1)!, "web") === "web-1", { what: "web-1" });
    // A service watch counts its request when it answers: give it time to be asked.
    await delay(500);
    const nodeReads = requests["catalog/node"] ?? 0;
    await register("web-2");
    await waitFor(() => answers.some((a) => ids(a, "web") === "web-1,web-2"), {
      what: "an answer with web-2",
    });
    // web-1 failing its check is an instance change too; the checks' snapshot that follows must
    // carry web-2, which only the service's answer brought.
    await consulCall(consul.url, "PUT", "/v1/agent/check/fail/service:web-1");
    await waitFor(() => answers.some((a) => /critical/.test(JSON.stringify(a.checks))), {
      what: "web-1 critical",
    });
    await waitFor(
      () => snapshots.some((s) => s.checks.some((c) => c.ServiceID === "web-1" && c.Status === "critical")),
      {
        what: "a snapshot with web-1 critical",
      },
    );
    await delay(300);
    assert.equal(requests["catalog/node"] ?? 0, nodeReads, "the nodes were read again for instance changes");
    assert.equal(
      ids(snapshots.at(-1)!, "web"),
      "web-1,web-2",
      "a snapshot lost what the service's answer brought",
    );
  });

  it("reads the catalog whole when a service appears or an instance's check goes", async () => {
    const nodeReads = requests["catalog/node"] ?? 0;
    await consulCall(consul.url, "PUT", "/v1/agent/service/deregister/web-2");
    await waitFor(() => answers.some((a) => ids(a, "web") === "web-1"), { what: "an answer without web-2" });
    await waitFor(() => (requests["catalog/node"] ?? 0) > nodeReads, {
      what: "a whole read after a check went",
    });
    await waitFor(() => ids(snapshots.at(-1)!, "web") === "web-1", { what: "a snapshot without web-2" });
    const reads = requests["catalog/node"] ?? 0;
    await consulCall(consul.url, "PUT", "/v1/agent/service/register", {
      ID: "api-1",
      Name: "api",
      Address: "10.0.0.2",
      Port: 80,
      Tags: ["http"],
    });
    await waitFor(() => (requests["catalog/node"] ?? 0) > reads, { what: "a whole read for a new service" });
    await waitFor(() => ids(snapshots.at(-1)!, "api") === "api-1", { what: "api in a snapshot" });
  });

  it("never applies a watched service's answer with no instance: a whole read confirms it (fail closed)", async () => {
    // Runs after the test above: web has web-1 left, api has api-1.
    const answersBefore = answers.length;
    const snapshotsBefore = snapshots.length;
    await consulCall(consul.url, "PUT", "/v1/agent/service/deregister/web-1");
    await waitFor(
      () =>
        snapshots
          .slice(snapshotsBefore)
          .some((s) => !s.nodes.some((n) => n.services.some((x) => x.Service === "web"))),
      { what: "a snapshot without any web instance" },
    );
    await delay(300); // the watch's own answer (Consul's index moved for web) has come by now
    const emptyWeb = answers.slice(answersBefore).filter((a) => a.name === "web" && a.nodes.length === 0);
    assert.equal(emptyWeb.length, 0, "an empty answer of web's own watch was applied as it came");
    assert.equal(ids(snapshots.at(-1)!, "api"), "api-1", "the whole read kept the other service");
  });

  it("service watches wait serviceWaitMs, not the catalog's wait (each timeout is a request)", async () => {
    // A second watcher whose service watches wait 0.5–1 s: over 8 quiet seconds each of them
    // times out and asks again at least 7 times. The first one's wait 15–30 s (waitMs 30 s, no
    // serviceWaitMs): at most once each. Consul itself holds each poll for the wait asked.
    const own: Record<string, number> = {};
    const stop = new AbortController();
    const second = startWatcher(scope, consul, stop.signal, {
      wanted: (tags) => tags.includes("http"),
      onSnapshot: () => {},
      serviceWatches: 8,
      serviceWaitMs: 1000,
      onService: () => true,
      onRequest: (endpoint) => (own[endpoint] = (own[endpoint] ?? 0) + 1),
    });
    try {
      await waitFor(() => (own["health/service"] ?? 0) > 0, { what: "the second watcher's service watches" });
      const short0 = own["health/service"] ?? 0;
      const long0 = requests["health/service"] ?? 0;
      await delay(8000);
      const short = (own["health/service"] ?? 0) - short0;
      const long = (requests["health/service"] ?? 0) - long0;
      assert.ok(short >= 7, `service watches waiting 1 s answered ${short} times in 8 s`);
      assert.ok(short > 3 * long, `1 s waits: ${short} answers, 30 s waits: ${long}`);
    } finally {
      stop.abort();
      await second;
    }
  });
});
