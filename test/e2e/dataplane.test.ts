// Dynamic upstreams in the whole lab (compose project of its own, free ports): instance sets in
// nginx shared memory, pushed by the templater; scaling never reloads nginx and never costs a
// request, POSTs included (nginx does not retry them, so only a correct data plane passes).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { routedByNginx } from "../../scripts/lab/state.ts";
import { docker, requireDocker } from "../helpers/docker.ts";
import { routedAll, testLab } from "../helpers/lab.ts";
import { startLoad } from "../helpers/load.ts";
import { parseMetrics, sampleValue } from "../helpers/prometheus.ts";
import { delay, waitFor } from "../helpers/wait.ts";

const lab = testLab("dockside-test-dataplane", {
  // DOCKSIDE_UPSTREAMS=reload runs the same test against reload-per-change (it fails there)
  DOCKSIDE_UPSTREAMS: process.env.DOCKSIDE_UPSTREAMS ?? "dynamic",
});
let edge: string;
let ops: string;

const routed = (service: string, timeoutMs = 90_000) => routedAll(lab, edge, service, timeoutMs);

async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${ops}/metrics`)).text();
  return sampleValue(parseMetrics(text), name, labels) ?? 0;
}

/** Reloads nginx did, by the templater's count and by nginx's own generation. */
async function reloadState() {
  const generation = (await (await fetch(`${edge}/_dockside/generation`)).text()).trim();
  return { reloads: await metric("templater_reloads_total", { result: "ok" }), generation };
}

describe("dynamic upstreams in the lab", { timeout: 1_200_000 }, () => {
  before(async () => {
    await requireDocker();
    await lab.up({ web: 1 });
    edge = `http://${await lab.port("edge", 8080)}`;
    ops = `http://${await lab.port("edge", 9102)}`;
    await routed("web");
    await routed("api");
  });
  after(() => lab.down(), { timeout: 180_000 });

  it("scales web 1→10→1 three times under 300 req/s of keep-alive GET and POST: 0 failed requests, 0 reloads", async () => {
    const before = await reloadState();
    const load = startLoad({
      url: `${edge}/web/`,
      rate: 300,
      connections: 16,
      postEvery: 3,
      durationMs: 600_000,
    });
    await delay(1000);
    const timings: string[] = [];
    for (let round = 1; round <= 3; round++) {
      const t0 = Date.now();
      await lab.scale({ web: 10 });
      assert.equal((await routed("web")).seen.size, 10);
      const t1 = Date.now();
      await lab.scale({ web: 1 }); // right after all 10 answer
      assert.equal((await routed("web")).seen.size, 1);
      timings.push(`round ${round}: up ${t1 - t0} ms, down ${Date.now() - t1} ms`);
    }
    await delay(2000);
    const r = await load.stop();
    const afterState = await reloadState();
    console.log(
      `3 × (1→10→1) at 300 req/s, every 3rd a POST: sent ${r.sent}, ok ${r.ok}, failed ${r.failed}, ` +
        `statuses ${JSON.stringify(r.statuses)}, reloads ${afterState.reloads - before.reloads}; ${timings.join("; ")}`,
    );
    if (r.failed > 0 && process.env.DOCKSIDE_TEST_DEBUG) {
      for (const svc of ["registrator", "edge"]) {
        const [c] = await lab.running(svc);
        const logs = String(
          await docker.getContainer(c!.id).logs({ stdout: true, stderr: true, timestamps: true }),
        );
        const lines = logs
          .split("\n")
          .filter((l) => /critical|warning|unhealthy|deregistered|not pushed|error/.test(l));
        console.log(`--- ${svc}\n${lines.slice(0, 60).join("\n")}`);
      }
    }
    assert.ok(r.sent > 3000, `only ${r.sent} requests sent`);
    assert.ok(Object.keys(r.instances).length >= 10, "traffic reached the new instances");
    assert.equal(r.failed, 0, `failures: ${JSON.stringify(r.failures.slice(0, 10))}`);
    assert.equal(afterState.reloads, before.reloads, "nginx reloaded while only instances changed");
    assert.equal(afterState.generation, before.generation, "nginx serves the same generation");
  });

  it("docker kill of an instance under load: it leaves rotation at once (well before a resync), GETs retried", async () => {
    await lab.scale({ web: 3 });
    await routed("web");
    const victim = (await lab.running("web"))[0]!;
    const address = `${victim.ip}:3000`;
    assert.ok((await routedByNginx(ops)).get("web")?.has(address), "victim is routed before the kill");
    const load = startLoad({
      url: `${edge}/web/`,
      rate: 300,
      connections: 16,
      postEvery: 3,
      durationMs: 60_000,
    });
    await delay(1000);
    // The kill event's own time (Docker's clock, the same host), not when our call returned.
    const events = await docker.getEvents({
      filters: { container: [victim.id], event: ["kill"] },
      since: Math.floor(Date.now() / 1000) - 1,
    });
    const killEvent = new Promise<number>((resolve) =>
      events.on("data", (c: Buffer) =>
        resolve((JSON.parse(c.toString().split("\n")[0]!) as { timeNano: number }).timeNano / 1e6),
      ),
    );
    // Polled from the moment the kill is asked, not from when the call returns: Docker answers a
    // SIGKILL only once the container has stopped (70–150 ms here), and by then the instance has
    // usually left rotation already, so a poll started after the call measured the call itself.
    const killed = docker.getContainer(victim.id).kill();
    let leftAt = 0;
    await waitFor(
      async () => {
        const gone = !(await routedByNginx(ops)).get("web")?.has(address);
        if (gone) leftAt = Date.now();
        return gone;
      },
      { what: "the killed instance to leave the pushed set", timeoutMs: 5000, intervalMs: 5 },
    );
    await killed;
    const killedAt = await killEvent;
    if (process.env.DOCKSIDE_TEST_DEBUG) {
      for (const svc of ["registrator", "edge"]) {
        const [c] = await lab.running(svc);
        const logs = (
          await docker
            .getContainer(c!.id)
            .logs({ stdout: true, stderr: true, timestamps: true, since: Math.floor(killedAt / 1000) - 1 })
        ).toString();
        console.log(
          `--- ${svc} (kill at ${new Date(killedAt).toISOString()}, left at ${new Date(leftAt).toISOString()})\n${logs
            .split("\n")
            .filter((l) => !l.includes('"service":"nginx"'))
            .slice(0, 40)
            .join("\n")}`,
        );
      }
    }
    (events as unknown as { destroy(): void }).destroy();
    await delay(1000);
    const r = await load.stop();
    const getFailures = r.failures.filter((f) => f.what.startsWith("GET")).length;
    console.log(
      `docker kill at 300 req/s: left rotation ${leftAt - killedAt} ms after the kill event; sent ${r.sent}, ` +
        `failed ${r.failed} (GET ${getFailures}): ${JSON.stringify(r.failures.slice(0, 5))}`,
    );
    // The goal is 100 ms (issue 8); the figure is printed above and in bench/README.md. A test holds
    // only a generous bound: "at once, from the kill event" versus "at the next resync" (30 s) or never.
    assert.ok(leftAt - killedAt <= 3000, `left rotation ${leftAt - killedAt} ms after the kill event`);
    assert.equal(getFailures, 0, "GETs are retried on the next live peer");
  });
});
