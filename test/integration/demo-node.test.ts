// demo-node's graceful shutdown in-process, and its image under a real Docker engine.
import assert from "node:assert/strict";
import http from "node:http";
import { before, describe, it } from "node:test";
import { silentLogger } from "../../lib/log.ts";
import { Lifecycle } from "../../services/demo-node/src/lifecycle.ts";
import { startServer } from "../../services/demo-node/src/server.ts";
import {
  containerLogs,
  docker,
  removeContainer,
  requireDocker,
  testLabel,
  uniqueName,
} from "../helpers/docker.ts";
import { images } from "../helpers/images.ts";
import { assertNotLoaded, loadedModulesProbe } from "../helpers/loaded-modules.ts";
import { testScope } from "../helpers/scope.ts";
import { waitFor } from "../helpers/wait.ts";

function get(
  port: number,
  path: string,
  agent?: http.Agent,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path, agent }, (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      })
      .on("error", reject);
  });
}

describe("demo-node graceful shutdown (in-process)", () => {
  it("fails readiness, serves through the drain delay, finishes in-flight work, then refuses", async () => {
    const lifecycle = new Lifecycle(Date.now(), 0);
    const server = await startServer({
      name: "web",
      version: "1",
      instance: "test",
      latencyMs: 1500,
      errorRate: 0,
      lifecycle,
      port: 0,
      host: "127.0.0.1",
      keepAliveTimeoutMs: 65_000,
      // A drain window wide enough for three requests on a loaded machine.
      drainDelayMs: 1000,
      shutdownTimeoutMs: 10_000,
      log: silentLogger,
    });
    const agent = new http.Agent({ keepAlive: true });
    assert.equal((await get(server.port, "/readyz", agent)).status, 200);
    const started = Date.now();
    const done = server.shutdown();
    assert.equal((await get(server.port, "/readyz")).status, 503, "readiness fails at once");
    const inflight = get(server.port, "/slow", agent); // 1.5 s latency: outlives the drain delay
    const during = await get(server.port, "/healthz");
    assert.equal(during.status, 200, "still serving during the drain delay");
    assert.equal(during.headers.connection, "close", "asks clients to drop keep-alive while draining");
    const r = await inflight;
    assert.equal(r.status, 200, "the in-flight request completed");
    assert.equal(await done, "clean");
    // "clean" already says it finished before the 10 s shutdown timeout; the clock checks the lower bound.
    assert.ok(Date.now() - started >= 1000, "not before the 1 s drain delay ended");
    await assert.rejects(get(server.port, "/"), /ECONNREFUSED/);
    agent.destroy();
  });

  it("cuts connections that outlive the shutdown timeout", async () => {
    const server = await startServer({
      name: "web",
      version: "1",
      instance: "test",
      latencyMs: 5000,
      errorRate: 0,
      lifecycle: new Lifecycle(Date.now(), 0),
      port: 0,
      host: "127.0.0.1",
      keepAliveTimeoutMs: 65_000,
      drainDelayMs: 0,
      shutdownTimeoutMs: 300,
      log: silentLogger,
    });
    const slow = get(server.port, "/").catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(await server.shutdown(), "timeout");
    assert.ok((await slow) instanceof Error);
  });
});

describe("demo-node image", { timeout: 120_000 }, () => {
  const scope = testScope();
  let id: string;
  let port: number;
  before(async () => {
    await requireDocker();
    const name = uniqueName("dockside-demo");
    const c = await docker.createContainer({
      name,
      Image: images().demo,
      Env: ["DEMO_NAME=web", "DEMO_DRAIN_DELAY=500ms"],
      Labels: { [testLabel]: "1" },
      ExposedPorts: { "3000/tcp": {} },
      HostConfig: { PortBindings: { "3000/tcp": [{ HostIp: "127.0.0.1", HostPort: "" }] } },
    });
    id = c.id;
    scope.defer(`container ${name}`, () => removeContainer(id));
    await c.start();
    const info = await c.inspect();
    port = Number(info.NetworkSettings.Ports["3000/tcp"]?.[0]?.HostPort);
  });

  it("answers with its identity and X-Instance, and runs as a non-root user", async () => {
    const r = await waitFor(() => get(port, "/hello"), { what: "demo-node to answer", timeoutMs: 15_000 });
    const body = JSON.parse(r.body) as { service: string; instance: string };
    assert.equal(body.service, "web");
    assert.equal(r.headers["x-instance"], body.instance);
    assert.equal(body.instance, id.slice(0, 12));
    const info = await docker.getContainer(id).inspect();
    assert.equal(info.Config.User, "node");
  });

  it("becomes healthy through its HEALTHCHECK on /readyz", async () => {
    await waitFor(async () => (await docker.getContainer(id).inspect()).State.Health?.Status === "healthy", {
      what: "health status healthy",
      timeoutMs: 20_000,
      intervalMs: 200,
    });
  });

  it("its health probe is cheap (no Node process per probe) and needs 3 misses in a row", async () => {
    const info = await docker.getContainer(id).inspect();
    const hc = info.Config.Healthcheck!;
    assert.ok(!hc.Test!.join(" ").includes("node"), `probe: ${hc.Test!.join(" ")}`);
    assert.ok((hc.Retries ?? 0) >= 3, `retries ${hc.Retries}`);
    const log = info.State.Health!.Log!;
    assert.ok(log.length > 0 && log.every((l) => l.ExitCode === 0), JSON.stringify(log));
    const took = log.map((l) => new Date(l.End).getTime() - new Date(l.Start).getTime());
    console.log(`probe run times (ms, as Docker saw them, shared machine): ${took.join(", ")}`);
  });

  it("stops gracefully on docker stop, with exit code 0, within the drain bound", async () => {
    const started = Date.now();
    await docker.getContainer(id).stop({ t: 10 });
    const elapsed = Date.now() - started;
    const info = await docker.getContainer(id).inspect();
    assert.equal(info.State.ExitCode, 0);
    // Exit code 0 says SIGTERM was handled (Docker's SIGKILL at 10 s gives 137); the lower bound
    // holds however loaded the machine is: the drain delay cannot be skipped.
    assert.ok(elapsed >= 450, `stopped after ${elapsed} ms, before the 500 ms drain delay ended`);
  });
});

/**
 * Work demo-node once did before it could take its first request, each found in a profile of its
 * start (bench/README.md, "demo-node's start"); every scale-up waits for this process to listen.
 */
const notBeforeListening: Record<string, string> = {
  "NativeModule dns": "the listen address went through dns.lookup (listen on every address instead)",
  "NativeModule internal/source_map/source_map_cache_map": "--enable-source-maps read the bundle's map",
  "NativeModule internal/util/diff": "esbuild's interop copied node:util's exports, running its lazy getters",
  "NativeModule worker_threads": "esbuild's interop copied node:util's exports, running its lazy getters",
};

describe("demo-node image start", { timeout: 60_000 }, () => {
  const scope = testScope();

  it("loads nothing before it listens that listening does not need", async () => {
    await requireDocker();
    const probe = loadedModulesProbe(scope, { listening: true });
    const name = uniqueName("dockside-demo-start");
    const c = await docker.createContainer({
      name,
      Image: images().demo, // its own command and flags: what the lab runs
      Env: [`NODE_OPTIONS=${probe.nodeOptions}`],
      Labels: { [testLabel]: "1" },
      HostConfig: { Binds: [probe.bind] },
    });
    scope.defer(`container ${name}`, () => removeContainer(c.id));
    await c.start();
    const exit = (await c.wait()) as { StatusCode: number };
    const { stdout, stderr } = await containerLogs(c);
    const reading = probe.read(stderr);
    const loaded = reading?.modules;
    assert.ok(
      exit.StatusCode === 0 && reading && loaded,
      `the probe saw no listening server (exit ${exit.StatusCode}): ${stderr}`,
    );
    assert.ok(loaded.includes("NativeModule http"), `the probe saw the start: ${loaded.join(", ")}`);
    assertNotLoaded(loaded, notBeforeListening);
    // The "listening" line says how long after its process started (bench/lab-scaling.ts splits
    // a scale-up's "start event → listening" with it): on Node's clock, before the probe's reading
    // (whose performance.now() counts from a moment no later than process.uptime's origin).
    const line = stdout
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { msg?: string; uptimeMs?: unknown })
      .find((l) => l.msg === "listening");
    const uptimeMs = line?.uptimeMs;
    assert.ok(
      typeof uptimeMs === "number" && uptimeMs > 0 && uptimeMs <= reading.atMs,
      `listening line's uptimeMs ${String(uptimeMs)}, probe at ${reading.atMs} ms: ${stdout}`,
    );
  });
});
