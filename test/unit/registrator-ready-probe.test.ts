// The readiness probe's schedule: short pauses right after a start, growing with the time
// since it, never shorter than 2 ms nor longer than --ready-interval; and a round against a
// real loopback server that starts listening late and answers 503 before it is ready.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { silentLogger } from "../../lib/log.ts";
import { probeDelay, ReadyProber, type ProbeTarget } from "../../services/registrator/src/ready-probe.ts";

describe("registrator readiness probe schedule", () => {
  it("starts at 2 ms, grows as an eighth of the time since the start, stops growing at the interval", () => {
    assert.equal(probeDelay(0, 25), 2);
    assert.equal(probeDelay(-500, 25), 2, "a start on a clock ahead of ours counts as just now");
    assert.equal(probeDelay(16, 25), 2);
    assert.equal(probeDelay(48, 25), 6);
    assert.equal(probeDelay(100, 25), 13);
    assert.equal(probeDelay(200, 25), 25);
    assert.equal(probeDelay(60_000, 25), 25);
    assert.equal(probeDelay(10, 1), 1, "an interval below the first pause wins");
  });

  it("probes of a slow start add up to a bounded number: ~30 more than a steady interval over 5 s", () => {
    let t = 0;
    let probes = 0;
    while (t < 5000) {
      probes++;
      t += probeDelay(t, 25);
    }
    const steady = 5000 / 25;
    assert.ok(probes <= steady + 35, `${probes} probes in 5 s, steady ${steady}`);
  });
});

describe("ReadyProber against a server that starts late", () => {
  it("a server listening 60 ms after the start, then answering 503 for 300 ms: ready on its first 2xx, few requests", async () => {
    // A port nobody listens on yet: find a free one, then close it.
    const free = http.createServer();
    await new Promise<void>((r) => free.listen(0, "127.0.0.1", r));
    const port = (free.address() as AddressInfo).port;
    await new Promise<void>((r) => free.close(() => r()));

    const startedAt = Date.now();
    let hits = 0;
    let readyAt = Infinity;
    const server = http.createServer((_req, res) => {
      hits++;
      const ok = Date.now() >= readyAt;
      res.writeHead(ok ? 200 : 503, { connection: "close" }).end();
    });
    const listening = new Promise<void>((resolve) =>
      setTimeout(() => server.listen(port, "127.0.0.1", () => resolve()), 60),
    );
    const ready = Promise.withResolvers<number>();
    const prober = new ReadyProber({
      intervalMs: 25,
      timeoutMs: 5000,
      concurrency: 4,
      log: silentLogger,
      onReady: () => ready.resolve(Date.now()),
    });
    const target: ProbeTarget = {
      containerId: "c1",
      containerName: "slow",
      instanceId: "i1",
      startedAt: new Date(startedAt).toISOString(),
      url: `http://127.0.0.1:${port}/readyz`,
    };
    try {
      await listening;
      readyAt = Date.now() + 300; // answers 503 for 300 ms after listening
      prober.ensure(target);
      const at = await ready.promise;
      const late = at - readyAt;
      assert.ok(late >= 0, "not ready before a 2xx");
      // At ~360 ms since the start the pause is the full 25 ms; loaded CI machines add more.
      assert.ok(late < 25 + 200, `seen ${late} ms after it answered 2xx`);
      // 503s for 300 ms from 60 ms on: pauses of 8 → 25 ms, never the 2 ms of the first instants.
      assert.ok(hits <= 25, `${hits} requests to a service answering 503 for 300 ms`);
    } finally {
      prober.stop();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
