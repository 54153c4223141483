import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  formatStatus,
  joinStatus,
  type ConsulInstance,
  type DockerInstance,
} from "../../scripts/lab/status.ts";
import { compareInstances } from "../../scripts/lab/wait.ts";

const d = (name: string, ip: string, state = "running", health = "healthy"): DockerInstance => ({
  service: "web",
  name,
  ip,
  state,
  health,
});
const c = (ip: string, status: ConsulInstance["status"] = "passing"): ConsulInstance => ({
  service: "web",
  id: `id-${ip}`,
  address: ip,
  port: 3000,
  status,
});

describe("lab status", () => {
  it("agrees when Docker, Consul and nginx hold the same instances", () => {
    const [s] = joinStatus(
      [d("web-1", "10.0.0.2"), d("web-2", "10.0.0.3")],
      [c("10.0.0.2"), c("10.0.0.3")],
      new Map([["web", new Set(["10.0.0.2:3000", "10.0.0.3:3000"])]]),
    );
    assert.ok(s!.ok);
    assert.equal(s!.dockerRunning, 2);
    assert.equal(s!.nginx, 2);
    assert.match(formatStatus([s!]), /^ok {3}web: 2 running in Docker, 2\/2 passing in Consul, 2 in nginx$/m);
  });

  it("flags each kind of disagreement", () => {
    const [s] = joinStatus(
      [
        d("web-1", "10.0.0.2"),
        d("web-2", "10.0.0.3"),
        d("web-3", "10.0.0.4", "exited", "unhealthy"),
        d("web-5", "10.0.0.6"),
      ],
      [c("10.0.0.3"), c("10.0.0.4"), c("10.0.0.5"), c("10.0.0.6", "critical")],
      new Map([["web", new Set(["10.0.0.6:3000", "10.0.0.9:3000"])]]),
    );
    const problems = Object.fromEntries(s!.rows.map((r) => [r.address, r.problem]));
    assert.deepEqual(problems, {
      "10.0.0.2": "running but not in Consul",
      "10.0.0.3:3000": "passing but not routed by nginx",
      "10.0.0.4:3000": "stopped but still in Consul",
      "10.0.0.6:3000": "routed by nginx but not passing",
      "10.0.0.5:3000": "in Consul but no such container",
      "10.0.0.9:3000": "routed by nginx but unknown",
    });
    assert.equal(s!.ok, false);
    assert.match(formatStatus([s!]), /^DIFF web:/m);
  });

  it("compares the instances that answered with those expected", () => {
    const r = compareInstances(
      ["a", "b"],
      new Map([
        ["b", 2],
        ["c", 1],
      ]),
    );
    assert.deepEqual(r.missing, ["a"]);
    assert.deepEqual(r.unexpected, ["c"]);
  });
});
