// The registrator against the real Docker engine and a real Consul agent: what
// appears, what disappears and when, health, readiness, bad input (issue 3's acceptance list).
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import type Docker from "dockerode";
import { startConsul, type ConsulHandle } from "../helpers/consul.ts";
import { containerIp, createNetwork, docker, type TestNetwork } from "../helpers/docker.ts";
import {
  awaitFreshFullSync,
  catalogInstances,
  newRun,
  ownedIds,
  runLabel,
  runWorkload,
  startTestRegistrator,
  type TestRegistrator,
} from "../helpers/registrator.ts";
import { testScope } from "../helpers/scope.ts";
import { waitFor } from "../helpers/wait.ts";
import { createWorkload, type WorkloadOptions } from "../helpers/workload.ts";

const ms = 1_000_000; // Docker health durations are in nanoseconds

async function execIn(c: Docker.Container, cmd: string[]): Promise<void> {
  const e = await c.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await e.start({});
  await new Promise<void>((resolve) => {
    stream.on("end", () => resolve());
    stream.resume();
  });
}

async function get(url: string): Promise<number> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  await res.body?.cancel();
  return res.status;
}

describe("registrator with Docker and Consul", { timeout: 240_000 }, () => {
  const scope = testScope();
  const run = newRun();
  let consul: ConsulHandle;
  let net: TestNetwork;
  let reg: TestRegistrator;
  const workload = (o: WorkloadOptions = {}) => runWorkload(scope, run, net.name, o);
  const instances = (name: string) => catalogInstances(consul.client, name);
  const passing = async (name: string) => (await instances(name)).filter((i) => i.passing);

  before(async () => {
    net = await createNetwork(scope);
    consul = await startConsul(scope, { network: net });
    reg = await startTestRegistrator(scope, { consul, run });
    await reg.synced;
  });

  it("a labelled container appears with the right name, ID, address, port, tags, meta and check", async () => {
    const w = await workload({
      labels: {
        SERVICE_NAME: "shop",
        SERVICE_TAGS: "http,v1",
        SERVICE_REGION: "eu-1",
        SERVICE_CHECK_HTTP: "/",
        SERVICE_CHECK_INTERVAL: "1s",
      },
    });
    const ip = await containerIp(w.id, net.name);
    const [i] = await waitFor(
      async () => {
        const list = await instances("shop");
        return list.length === 1 && list[0]!.passing && list;
      },
      { what: "shop passing (Consul runs its HTTP check)", timeoutMs: 15_000 },
    );
    assert.equal(i!.id, `${w.name}:8080`);
    assert.equal(i!.address, ip);
    assert.equal(i!.port, 8080);
    assert.deepEqual(i!.tags, ["http", "v1"]);
    assert.equal(i!.meta.region, "eu-1");
    assert.equal(i!.meta.dockside_owner, reg.identity);
    assert.equal(i!.meta.dockside_container, w.id);
    assert.deepEqual(i!.checks, { [`service:${w.name}:8080:http`]: "passing" });

    const plain = await workload({ labels: { SERVICE_NAME: "plain" } });
    const [p] = await waitFor(async () => (await passing("plain")).length === 1 && passing("plain"), {
      what: "plain registered",
    });
    assert.deepEqual(p!.checks, {}, "no HEALTHCHECK, no check asked for: passing without checks");
    assert.equal(p!.id, `${plain.name}:8080`);
  });

  it("docker stop removes it; docker kill removes it", async () => {
    const a = await workload({ labels: { SERVICE_NAME: "gone" } });
    const b = await workload({ labels: { SERVICE_NAME: "gone" } });
    await waitFor(async () => (await instances("gone")).length === 2, { what: "two registered" });
    await a.container.stop({ t: 1 });
    await waitFor(async () => (await instances("gone")).map((i) => i.id).join() === `${b.name}:8080`, {
      what: "stopped one gone",
    });
    await b.container.kill();
    await waitFor(async () => (await instances("gone")).length === 0, { what: "killed one gone" });
  });

  it("20 containers started at once → exactly 20 instances, and 0 after they are removed", async () => {
    const burst = await Promise.all(
      Array.from({ length: 20 }, () => workload({ labels: { SERVICE_NAME: "burst" } })),
    );
    await waitFor(async () => (await passing("burst")).length === 20, {
      what: "20 instances",
      timeoutMs: 20_000,
    });
    const seen = await instances("burst");
    assert.deepEqual(
      seen.map((i) => i.id),
      burst.map((w) => `${w.name}:8080`).sort(),
    );
    assert.equal(new Set(seen.map((i) => i.address)).size, 20);
    await awaitFreshFullSync(reg); // a resync later: still exactly 20
    assert.equal((await instances("burst")).length, 20);
    await Promise.all(burst.map((w) => w.container.remove({ force: true })));
    await waitFor(async () => (await instances("burst")).length === 0, {
      what: "all gone",
      timeoutMs: 20_000,
    });
  });

  it("docker stop on a container that drains for 3 s: out of the passing set before its process exits", async () => {
    const w = await workload({
      labels: { SERVICE_NAME: "drain" },
      stopTimeout: 10,
      exposed: ["8080/tcp"],
      cmd: [
        "sh",
        "-c",
        // PID 1 itself traps TERM (with `a && b & wait` the trap would be set in a background subshell).
        "mkdir -p /www; echo ok > /www/index.html; trap 'sleep 3; exit 0' TERM; httpd -f -p 8080 -h /www & wait",
      ],
    });
    const ip = await containerIp(w.id, net.name);
    await waitFor(async () => (await passing("drain")).length === 1, { what: "drain registered" });
    const t0 = Date.now();
    const stopped = w.container.stop({ t: 10 }).then(() => Date.now());
    const gone = await waitFor(async () => (await passing("drain")).length === 0 && Date.now(), {
      what: "out of the passing set",
      intervalMs: 10,
      timeoutMs: 5000,
    });
    assert.equal(await get(`http://${ip}:8080/`), 200, "still serving while draining");
    const exited = await stopped;
    // Ordering only (the latency is bench/registrator-latency.ts's figure): out of rotation
    // before the 3 s drain ended, and the process ended by itself, not by the SIGKILL at 10 s.
    assert.ok(gone < exited, `left the passing set ${exited - gone} ms before the process exited`);
    assert.ok(exited - t0 < 9500, `the process drained for ${exited - t0} ms and exited by itself`);
    await awaitFreshFullSync(reg);
    assert.equal((await instances("drain")).length, 0, "a resync after the exit does not bring it back");
  });

  it("a HEALTHCHECK makes it critical while starting, passing when healthy, critical when unhealthy", async () => {
    const w = await workload({
      labels: { SERVICE_NAME: "hc" },
      healthcheck: {
        Test: ["CMD-SHELL", "test -f /healthy"],
        Interval: 1000 * ms,
        Timeout: 1000 * ms,
        Retries: 1,
      },
    });
    const check = `service:${w.name}:8080:health`;
    const status = async () => (await instances("hc"))[0]?.checks[check];
    await waitFor(async () => (await status()) === "critical", { what: "critical while starting" });
    assert.equal((await w.container.inspect()).State.Health?.Status, "starting");
    await execIn(w.container, ["touch", "/healthy"]);
    await waitFor(async () => (await status()) === "passing", {
      what: "passing when healthy",
      timeoutMs: 5000,
    });
    assert.equal((await passing("hc")).length, 1);
    await execIn(w.container, ["rm", "/healthy"]);
    await waitFor(async () => (await status()) === "critical", {
      what: "critical when unhealthy",
      timeoutMs: 5000,
    });
    assert.equal((await passing("hc")).length, 0);
  });

  it("SERVICE_READY_HTTP: passing on the first 2xx, long before Docker's first health check", async () => {
    const t0 = Date.now();
    const w = await workload({
      labels: { SERVICE_NAME: "fast", SERVICE_READY_HTTP: "/readyz", SERVICE_TAGS: "http" },
      // /readyz appears 400 ms after start: the first probes get 404.
      exposed: ["8080/tcp"],
      cmd: [
        "sh",
        "-c",
        "mkdir -p /www; (sleep 0.4; echo ready > /www/readyz) & trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait",
      ],
      healthcheck: { Test: ["CMD-SHELL", "test -f /www/readyz"], Interval: 30_000 * ms, Retries: 1 },
    });
    const [i] = await waitFor(async () => (await passing("fast")).length === 1 && passing("fast"), {
      what: "fast passing",
      intervalMs: 10,
      timeoutMs: 5000,
    });
    const took = Date.now() - t0;
    assert.equal(
      (await w.container.inspect()).State.Health?.Status,
      "starting",
      "Docker has not decided yet",
    );
    // "Long before Docker's first health check" is the health status above (still starting,
    // its first check is 30 s away); the clock only checks the lower bound, which load cannot break.
    assert.ok(took >= 400, `passing ${took} ms after docker run, before /readyz answered`);
    assert.equal(i!.checks[`service:${w.name}:8080:health`], "passing");
    assert.ok(
      reg.logs.some((l) => l.msg === "check status" && l.serviceName === "fast" && l.status === "passing"),
    );
  });

  it("hostile and malformed labels: each is skipped or cleaned with one log line, the rest registers", async () => {
    const badName = await workload({ labels: { SERVICE_NAME: "bad name;{}" } });
    const cleaned = await workload({
      labels: {
        SERVICE_NAME: "hostile-ok",
        SERVICE_TAGS: "http,bad tag,x{y}",
        SERVICE_CHECK_HTTTP: "/x",
        SERVICE_CHECK_INTERVAL: "1ms",
        "SERVICE_a.b": "x",
        SERVICE_REGION: "eu",
        SERVICE_NOTE: "line1\nline2",
        SERVICE_99999_NAME: "x",
      },
    });
    const notIgnored = await workload({ labels: { SERVICE_NAME: "hostile-keep", SERVICE_IGNORE: "false" } });
    const ignoredSafely = await workload({
      labels: { SERVICE_NAME: "hostile-unsure", SERVICE_IGNORE: "maybe" },
    });
    const range = await workload({
      labels: { SERVICE_NAME: "hostile-range" },
      exposed: Array.from({ length: 100 }, (_, n) => `${9000 + n}/tcp`),
    });
    const good = await workload({ labels: { SERVICE_NAME: "hostile-good" } });
    await waitFor(async () => (await passing("hostile-good")).length === 1, { what: "the good one" });
    const ids = await ownedIds(consul.client, reg.identity);
    for (const w of [cleaned, notIgnored, good]) assert.ok(ids.includes(`${w.name}:8080`), w.name);
    for (const w of [badName, ignoredSafely, range])
      assert.ok(!ids.some((id) => id.startsWith(w.name)), w.name);
    const [c] = await instances("hostile-ok");
    assert.deepEqual(c!.tags, ["http"]);
    assert.deepEqual(Object.keys(c!.meta).sort(), [
      "dockside_container",
      "dockside_owner",
      "dockside_spec",
      "region",
    ]);

    const lines = (name: string) =>
      reg.logs.filter((l) => l.container === name && l.reason).map((l) => String(l.reason));
    assert.equal(lines(badName.name).length, 1);
    assert.match(lines(badName.name)[0]!, /SERVICE_NAME="bad name;\{\}": service names may use/);
    assert.equal(lines(cleaned.name).length, 7, lines(cleaned.name).join("\n"));
    assert.equal(lines(notIgnored.name).length, 0);
    assert.match(lines(ignoredSafely.name).join(), /SERVICE_IGNORE="maybe" is not a boolean/);
    assert.match(lines(range.name).join(), /exposes 100 ports/);
    // A resync later: still one line each.
    await awaitFreshFullSync(reg);
    assert.equal(lines(badName.name).length, 1);
  });

  it("chooses the network by rule: SERVICE_NETWORK among several, skipped with a reason otherwise", async () => {
    const other = await createNetwork(scope);
    const chosen = await workload({
      labels: { SERVICE_NAME: "multi", SERVICE_NETWORK: other.name },
      start: false,
    });
    const unsure = await workload({ labels: { SERVICE_NAME: "multi-unsure" }, start: false });
    for (const w of [chosen, unsure]) {
      await docker.getNetwork(other.id).connect({ Container: w.id });
      await w.container.start();
    }
    const [i] = await waitFor(async () => (await instances("multi")).length === 1 && instances("multi"), {
      what: "multi registered",
    });
    assert.equal(i!.address, await containerIp(chosen.id, other.name));
    await waitFor(
      () => reg.logs.some((l) => l.container === unsure.name && /several networks/.test(String(l.reason))),
      {
        what: "the reason for skipping",
      },
    );
    assert.equal((await instances("multi-unsure")).length, 0);
    for (const w of [chosen, unsure]) await w.container.remove({ force: true });
  });

  it("published mode registers the host address and the published port", async () => {
    const run2 = newRun();
    const pub = await startTestRegistrator(scope, {
      consul,
      run: run2,
      mapping: { addressMode: "published", hostIp: "127.0.0.1" },
    });
    await pub.synced;
    const w = await createWorkload(scope, {
      network: net.name,
      publish: true,
      labels: { [runLabel]: run2, SERVICE_NAME: "pub" },
    });
    const hostPort = Number((await w.container.inspect()).NetworkSettings.Ports["8080/tcp"]![0]!.HostPort);
    const [i] = await waitFor(async () => (await instances("pub")).length === 1 && instances("pub"), {
      what: "pub registered",
    });
    assert.deepEqual([i!.address, i!.port], ["127.0.0.1", hostPort]);
    assert.equal(await get(`http://127.0.0.1:${hostPort}/`), 200, "the registered address answers");
    assert.equal(i!.meta.dockside_owner, pub.identity);
    await pub.stop();
  });
});
