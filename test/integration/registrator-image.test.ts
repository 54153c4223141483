// The shipped image (dockside/registrator:dev), run the way the lab runs it: the
// Docker socket mounted read-only, Consul by name on a shared network.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import type Docker from "dockerode";
import { startConsul, type ConsulHandle } from "../helpers/consul.ts";
import {
  containerIp,
  containerLogs,
  createNetwork,
  docker,
  dockerSocketGroup,
  removeContainer,
  requireDocker,
  testLabel,
  uniqueName,
  type TestNetwork,
} from "../helpers/docker.ts";
import { images } from "../helpers/images.ts";
import { catalogInstances, newRun, runLabel } from "../helpers/registrator.ts";
import { testScope } from "../helpers/scope.ts";
import { waitFor } from "../helpers/wait.ts";
import { createWorkload } from "../helpers/workload.ts";

const logsOf = async (c: Docker.Container) => (await containerLogs(c)).all;

describe("registrator image", { timeout: 120_000 }, () => {
  const scope = testScope();
  const run = newRun();
  let consul: ConsulHandle;
  let net: TestNetwork;

  async function runImage(opts: { cmd?: string[]; env?: string[] }): Promise<Docker.Container> {
    await requireDocker();
    const name = uniqueName("dockside-registrator");
    const c = await docker.createContainer({
      name,
      Image: images().registrator,
      Cmd: opts.cmd,
      Env: opts.env,
      Labels: { [testLabel]: "1" },
      ExposedPorts: { "9101/tcp": {} },
      HostConfig: {
        NetworkMode: net.name,
        Binds: ["/var/run/docker.sock:/var/run/docker.sock"],
        // The image runs as a non-root user: the socket's group lets it read the socket.
        GroupAdd: [dockerSocketGroup()],
        PortBindings: { "9101/tcp": [{ HostIp: "127.0.0.1", HostPort: "" }] },
      },
    });
    scope.defer(`container ${name}`, () => removeContainer(c.id));
    await c.start();
    return c;
  }

  before(async () => {
    net = await createNetwork(scope);
    consul = await startConsul(scope, { network: net, alias: "consul" });
  });

  it("starts, registers a labelled container, serves /health and /metrics, and stops at once without deregistering", async () => {
    const reg = await runImage({
      env: [
        "CONSUL_HTTP_ADDR=consul:8500",
        `REGISTRATOR_LABEL_FILTER=${runLabel}=${run}`,
        "REGISTRATOR_RESYNC=5s",
      ],
    });
    const w = await createWorkload(scope, {
      network: net.name,
      labels: { [runLabel]: run, SERVICE_NAME: "image-smoke", SERVICE_TAGS: "http" },
    });
    const [i] = await waitFor(
      async () =>
        (await catalogInstances(consul.client, "image-smoke")).length === 1 &&
        catalogInstances(consul.client, "image-smoke"),
      { what: "the workload registered by the image", timeoutMs: 20_000 },
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}\nregistrator logs:\n${await logsOf(reg)}`);
    });
    const engineId = ((await docker.info()) as { ID: string }).ID;
    assert.equal(i!.address, await containerIp(w.id, net.name));
    assert.equal(i!.port, 8080);
    assert.deepEqual(i!.tags, ["http"]);
    assert.equal(i!.meta.dockside_owner, engineId, "identity defaults to the Docker engine ID");

    const port = (await reg.inspect()).NetworkSettings.Ports["9101/tcp"]![0]!.HostPort;
    const health = await fetch(`http://127.0.0.1:${port}/health`);
    const body = (await health.json()) as Record<string, unknown>;
    assert.equal(health.status, 200);
    assert.equal(body.ok, true);
    assert.equal(body.identity, engineId);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(metrics, /^registrator_registrations_total 1$/m);
    assert.match(metrics, /^registrator_consul_up 1$/m);
    assert.match(metrics, /^registrator_instances 1$/m);
    assert.match(metrics, /^process_resident_memory_bytes /m);
    for (const line of (await logsOf(reg)).trim().split("\n"))
      assert.doesNotThrow(() => JSON.parse(line), line);

    const t0 = Date.now();
    await reg.stop({ t: 10 });
    const took = Date.now() - t0;
    const state = (await reg.inspect()).State;
    assert.equal(state.ExitCode, 0);
    assert.ok(took < 10_000, `stopped in ${took} ms: by itself, before Docker's SIGKILL at 10 s`);
    assert.equal(
      (await catalogInstances(consul.client, "image-smoke")).length,
      1,
      "still registered after it stopped",
    );
    assert.match(await logsOf(reg), /"msg":"stopped; registrations left in place"/);
  });

  it("a bad flag or variable exits 2 with a message naming it", async () => {
    const cases: [{ cmd?: string[]; env?: string[] }, RegExp][] = [
      [{ cmd: ["--resync", "5"] }, /invalid --resync: "5" is not a duration/],
      [
        { env: ["REGISTRATOR_ADDRESS_MODE=sideways"] },
        /invalid REGISTRATOR_ADDRESS_MODE: "sideways" is not one of internal, published/,
      ],
      [{ cmd: ["--address-mode", "published"] }, /--host-ip \(REGISTRATOR_HOST_IP\) is required/],
      [{ cmd: ["--no-such-flag"] }, /no-such-flag/],
    ];
    for (const [opts, flag] of cases) {
      const c = await runImage(opts);
      const { StatusCode } = (await c.wait()) as { StatusCode: number };
      assert.equal(StatusCode, 2, JSON.stringify(opts));
      assert.match(await logsOf(c), flag);
    }
  });
});
