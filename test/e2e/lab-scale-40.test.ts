// Scale to 40 on a 2-core machine (issue 9): web 3→40→3, twice, under a steady keep-alive load
// on /web/ and /api/. What failed before: a Node process per Docker health probe saturated the
// machine, one missed probe marked instances unhealthy, whole services went dark (7,650 × 503 on
// /api/, which was never scaled). Now: a cheap probe with retries, panic mode for "all critical
// at once", and instance changes pushed without reloads. The time to all 40 is printed, not
// asserted (bench/lab-scale-40.ts measures it); the test holds what must never happen.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { requireDocker } from "../helpers/docker.ts";
import { routedAll, runningHostnames, testLab } from "../helpers/lab.ts";
import { startLoad } from "../helpers/load.ts";

const peak = 40;
const lab = testLab("dockside-test-s40");
let edge: string;
const running = (service: string) => runningHostnames(lab, service);

describe(`web scaled 3→${peak}→3 twice under keep-alive load`, { timeout: 1_500_000 }, () => {
  before(async () => {
    await requireDocker();
    await lab.up();
    edge = `http://${await lab.port("edge", 8080)}`;
    await routedAll(lab, edge, "web", 90_000);
    await routedAll(lab, edge, "api", 90_000);
  });
  after(() => lab.down(), { timeout: 300_000 });

  it(`/api/ loses nothing, /web/ loses no GET, and all ${peak} are routed each time`, async () => {
    const web = startLoad({ url: `${edge}/web/`, rate: 50, connections: 8, durationMs: 20 * 60_000 });
    const api = startLoad({ url: `${edge}/api/`, rate: 50, connections: 8, durationMs: 20 * 60_000 });
    let results;
    try {
      for (let round = 1; round <= 2; round++) {
        const t0 = Date.now();
        await lab.scale({ web: peak });
        // Every one of the 40 answers through the edge (generous: Docker starts them one by one).
        await routedAll(lab, edge, "web", 600_000);
        assert.equal((await running("web")).length, peak);
        console.log(
          `# round ${round}: all ${peak} routed ${((Date.now() - t0) / 1000).toFixed(1)} s after the scale began`,
        );
        await lab.scale({ web: 3 });
        await routedAll(lab, edge, "web", 120_000);
      }
    } finally {
      results = await Promise.all([web.stop(), api.stop()]);
    }
    const [w, a] = results;
    console.log(`# /web/: ${w.sent} sent, ${w.failed} failed; /api/: ${a.sent} sent, ${a.failed} failed`);
    assert.ok(w.sent > 100 && a.sent > 100, "the load ran");
    assert.equal(a.failed, 0, `/api/ failures: ${JSON.stringify(a.failures.slice(0, 5))}`);
    assert.equal(w.failed, 0, `/web/ GET failures: ${JSON.stringify(w.failures.slice(0, 5))}`);
  });
});
