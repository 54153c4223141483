// The Swarm road: the cluster lab's 3 engines joined into a swarm (3 managers),
// deploy/cluster/stack.yml deployed with `docker stack deploy` (registrator global, the demo
// `sweb` replicated, registered with its overlay address, an edge on the overlay), scaled
// 3 → 9 → 3 with `docker service scale` under a keep-alive GET load: 0 failed GETs.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ClusterLab } from "../../scripts/lab/cluster/cluster.ts";
import { SwarmRoad } from "../../scripts/lab/cluster/swarm.ts";
import { routedByNginx } from "../../scripts/lab/state.ts";
import { waitForInstances } from "../../scripts/lab/wait.ts";
import { requireDocker } from "../helpers/docker.ts";
import { startLoad } from "../helpers/load.ts";

const lab = new ClusterLab({ prefix: "dockside-cluster-swarm", subnet: "10.213.4" });
const swarm = new SwarmRoad(lab);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function allRouted(timeoutMs = 120_000) {
  return waitForInstances(`${swarm.edgeUrl()}/sweb/`, () => swarm.instances(), { timeoutMs });
}

describe("cluster: Docker Swarm road", { timeout: 600_000 }, () => {
  before(
    async () => {
      await requireDocker();
      await lab.down();
      await lab.up({});
      await swarm.up();
      await allRouted();
    },
    { timeout: 300_000 },
  );
  after(() => lab.down(), { timeout: 180_000 });

  test("tasks are registered with their overlay address by the registrator of their node", async () => {
    const api = await lab.api();
    const token = await lab.managementToken();
    const entries = await api.request<
      { Node: string; ServiceAddress: string; ServiceMeta: Record<string, string> }[]
    >("GET", "/v1/catalog/service/sweb", { token });
    assert.equal(entries.length, 3);
    for (const e of entries) {
      // Overlay addresses, not a host's: the swarm's default address pool is 10.0.0.0/8 outside the lab's /24.
      assert.ok(
        !e.ServiceAddress.startsWith(`${lab.plan.subnet}.`),
        `${e.ServiceAddress} is an overlay address`,
      );
      assert.ok(
        lab.plan.hosts.some((h) => h.node === e.Node),
        `${e.Node} is one of the hosts`,
      );
    }
    const upstream = (await routedByNginx(swarm.opsUrl())).get("sweb");
    assert.equal(upstream?.size, 3);
  });

  test("docker service scale 3 → 9 → 3 under a keep-alive GET load: 0 failed GETs", async () => {
    const load = startLoad({
      url: `${swarm.edgeUrl()}/sweb/`,
      rate: 60,
      durationMs: 240_000,
      connections: 8,
    });
    try {
      await sleep(1000);
      await swarm.scale(9);
      const up = await allRouted();
      assert.equal(up.seen.size, 9);
      await sleep(1000);
      await swarm.scale(3);
      const down = await allRouted();
      assert.equal(down.seen.size, 3);
      // The removed tasks drain (stop_grace_period 15 s) while the load keeps going.
      await sleep(3000);
    } finally {
      const r = await load.stop();
      console.log(`# sweb scaled 3 → 9 → 3: ${r.sent} GETs, ${r.failed} failed`);
      assert.ok(r.ok > 100, `the load ran (${r.ok} ok)`);
      assert.equal(
        r.failed,
        0,
        `${r.failed} of ${r.sent} GETs failed: ${JSON.stringify(r.failures.slice(0, 10))}`,
      );
    }
  });
});
