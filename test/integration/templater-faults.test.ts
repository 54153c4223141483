// Apply failures that pass by themselves: the output directory full (a small tmpfs), then space
// freed. The templater retries with backoff, without waiting for a Consul change, and /health
// says it is degraded (and why) meanwhile. Real edge image, real Consul, busybox upstreams.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { registerInstance, startConsul, type ConsulHandle } from "../helpers/consul.ts";
import { containerIp, createNetwork, type TestNetwork } from "../helpers/docker.ts";
import { edgePaths, startEdge, type EdgeHandle } from "../helpers/edge.ts";
import { testScope } from "../helpers/scope.ts";
import { waitFor } from "../helpers/wait.ts";
import { createWorkload, type Workload } from "../helpers/workload.ts";

describe("edge: apply failures are retried", { timeout: 300_000 }, () => {
  const scope = testScope();
  let network: TestNetwork;
  let consul: ConsulHandle;
  let edge: EdgeHandle;
  let workload: Workload;
  let ip: string;

  const register = (id: string, name: string) => registerInstance(consul.client, { id, name, address: ip });
  const health = async () =>
    (await (await fetch(`${edge.opsUrl}/health`)).json()) as { state: string; degraded: string[] };

  before(async () => {
    network = await createNetwork(scope);
    consul = await startConsul(scope, { network, alias: "consul" });
    workload = await createWorkload(scope, { network: network.name });
    ip = await containerIp(workload.id, network.name);
    edge = await startEdge(scope, {
      network,
      tmpfs: { [edgePaths.output]: `size=1m,mode=0755,uid=${edgePaths.uid},gid=${edgePaths.uid}` },
    });
    await register("web-1", "web");
    await waitFor(async () => (await fetch(`${edge.url}/web/`)).status === 200, { what: "/web/ routed" });
  });

  it("ENOSPC on the output directory, then space freed: applied without any Consul change", async () => {
    const fill = await edge.exec([
      "sh",
      "-c",
      `dd if=/dev/zero of=${edgePaths.output}/fill bs=4k 2>&1; df -k ${edgePaths.output}`,
    ]);
    assert.match(fill.output, /No space left|100%/, fill.output);
    const generation = await edge.generation();
    await register("full-1", "full"); // a new route: needs a new generation on the full disk
    await waitFor(
      async () => (await edge.metric("templater_apply_failures_total", { stage: "write" })) >= 1,
      {
        what: "the write to fail",
      },
    );
    const h = await health();
    assert.equal(h.state, "degraded");
    assert.match(h.degraded.join("\n"), /write.*ENOSPC|ENOSPC/, JSON.stringify(h));
    assert.equal(await edge.generation(), generation, "the live config stays");
    assert.equal((await fetch(`${edge.url}/web/`)).status, 200, "and serves");
    await waitFor(
      async () => (await edge.metric("templater_apply_failures_total", { stage: "write" })) >= 2,
      {
        what: "a retry without any Consul change",
      },
    );
    const rm = await edge.exec(["rm", "-f", `${edgePaths.output}/fill`]);
    assert.equal(rm.exitCode, 0, rm.output);
    await waitFor(async () => (await fetch(`${edge.url}/full/`)).status === 200, {
      what: "the route applied once space is back",
      timeoutMs: 30_000,
    });
    // right after the reload an old worker may still answer for a moment: wait for the new generation
    await waitFor(async () => (await edge.generation()) !== generation, {
      what: "the new generation served",
    });
    await waitFor(async () => (await health()).state === "ok", { what: "/health ok again" });
  });
});
