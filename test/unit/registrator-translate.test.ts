// The pure edges of the adapters: Docker's inspect and event JSON in, Consul's
// check definitions out, DOCKER_HOST parsing.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type Docker from "dockerode";
import { checkDefinition, goDuration } from "../../services/registrator/src/consul/registry.ts";
import { factsFromInspect } from "../../services/registrator/src/docker/facts.ts";
import { dockerOptions, parseEvent } from "../../services/registrator/src/docker/source.ts";
import { containerInstances } from "../../services/registrator/src/core/instances.ts";
import { mappingOptions } from "../helpers/registrator-fakes.ts";

// Trimmed from a real `docker inspect` on this project's engine (20.10).
const inspect = {
  Id: "a90b4f3db3aeb99ba3aac24794f668ccdc3251fc7f542bde7a48c5d28053ed83",
  Created: "2026-11-27T21:25:08.073130126Z",
  Name: "/factsample-26082",
  State: {
    Status: "running",
    Running: true,
    Paused: false,
    StartedAt: "2026-11-27T21:25:08.26080415Z",
    Health: { Status: "healthy", FailingStreak: 0, Log: [] },
  },
  Config: {
    Image: "dockside/base-busybox:bookworm",
    Labels: { SERVICE_NAME: "web", "dockside.test": "1" },
    Env: [
      "OTHER=secret",
      "SERVICE_TAGS=http",
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ],
    ExposedPorts: { "8080/tcp": {}, "9090/udp": {} },
    Healthcheck: { Test: ["CMD-SHELL", "true"], Interval: 1000000000 },
    StopSignal: "SIGQUIT",
  },
  HostConfig: { NetworkMode: "default" },
  NetworkSettings: {
    Ports: { "8080/tcp": [{ HostIp: "127.0.0.1", HostPort: "32781" }], "9090/udp": null },
    Networks: { bridge: { IPAddress: "172.17.0.4", NetworkID: "e47324f00dd5" } },
  },
} as unknown as Docker.ContainerInspectInfo;

describe("factsFromInspect", () => {
  it("keeps what the mapping needs and no other environment", () => {
    const f = factsFromInspect(inspect);
    assert.equal(f.name, "factsample-26082");
    assert.deepEqual(f.env, { SERVICE_TAGS: "http" }, "no OTHER=secret, no PATH");
    assert.deepEqual(f.networks, { bridge: "172.17.0.4" });
    assert.deepEqual(f.exposed, ["8080/tcp", "9090/udp"]);
    assert.deepEqual(f.bindings, { "8080/tcp": [{ hostIp: "127.0.0.1", hostPort: 32781 }] });
    assert.equal(f.healthcheck, true);
    assert.equal(f.health, "healthy");
    assert.equal(f.stopSignal, "SIGQUIT");
    assert.equal(f.running, true);
  });
  it("HEALTHCHECK NONE is no health check; an image's inherited one shows in State.Health", () => {
    const none = structuredClone(inspect);
    none.Config.Healthcheck = { Test: ["NONE"] };
    delete none.State.Health;
    assert.equal(factsFromInspect(none).healthcheck, false);
    assert.equal(factsFromInspect(none).health, "none");
    const inherited = structuredClone(inspect);
    delete inherited.Config.Healthcheck;
    assert.equal(factsFromInspect(inherited).healthcheck, true);
  });
  it("feeds the mapping end to end", () => {
    const m = containerInstances(factsFromInspect(inspect), mappingOptions());
    assert.deepEqual(
      m.instances.map((i) => [i.id, i.name, i.address, i.port, i.tags]),
      [
        ["factsample-26082:8080", "web-8080", "172.17.0.4", 8080, ["http"]],
        ["factsample-26082:9090:udp", "web-9090", "172.17.0.4", 9090, ["http"]],
      ],
    );
  });
});

describe("parseEvent", () => {
  it("reads Action and Actor, and keeps the exact nanosecond resume point", () => {
    const line =
      '{"status":"start","id":"abc","from":"img","Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"image":"img","name":"n"}},"scope":"local","time":1795814576,"timeNano":1795814576114627823}';
    const ev = parseEvent(line);
    assert.equal(ev.Action, "start");
    assert.equal(ev.Actor.ID, "abc");
    assert.equal(ev.since, "1795814576.114627823");
  });
  it("falls back to whole seconds", () => {
    assert.equal(parseEvent('{"Type":"container","Action":"die","Actor":{"ID":"x"},"time":17}').since, "17");
  });
});

describe("dockerOptions (DOCKER_HOST)", () => {
  it("unix sockets and tcp addresses", () => {
    assert.equal(dockerOptions("unix:///var/run/docker.sock", {}).socketPath, "/var/run/docker.sock");
    const tcp = dockerOptions("tcp://10.0.0.5:2375", {});
    assert.deepEqual(
      [tcp.host, tcp.port, tcp.protocol, tcp.socketPath],
      ["10.0.0.5", "2375", "http", undefined],
    );
    assert.equal(dockerOptions("tcp://10.0.0.5:2376", {}).protocol, "https");
    assert.equal(dockerOptions("tcp://h:2375", { DOCKER_TLS_VERIFY: "1" }).protocol, "https");
  });
  it("rejects what it cannot use, naming the value", () => {
    assert.throws(() => dockerOptions("unix://relative.sock", {}), /unix:\/\/relative.sock/);
    assert.throws(() => dockerOptions("ssh://me@host", {}), /ssh:\/\/me@host/);
  });
});

describe("Consul check definitions", () => {
  it("Go durations are exact and short", () => {
    assert.deepEqual([3_600_000, 90_000, 60_000, 1500, 25].map(goDuration), [
      "1h",
      "90s",
      "1m",
      "1500ms",
      "25ms",
    ]);
  });
  it("TTL checks start with the wanted status; HTTP checks carry interval and timeout", () => {
    const m = containerInstances(factsFromInspect(inspect), mappingOptions({ checkTtlMs: 600_000 }))
      .instances[0]!;
    const withHttp = {
      ...m,
      checks: [
        ...m.checks,
        {
          id: "service:x:http",
          name: "HTTP GET /h",
          kind: "http" as const,
          target: "http://1.2.3.4:80/h",
          intervalMs: 5000,
          timeoutMs: 1000,
          deregisterAfterMs: 600_000,
        },
      ],
    };
    assert.deepEqual(
      withHttp.checks.map((c) => checkDefinition(c, withHttp)),
      [
        {
          checkid: "service:factsample-26082:8080:health",
          name: "Docker health",
          ttl: "10m",
          status: "passing",
          notes: "Docker health: healthy",
        },
        {
          checkid: "service:x:http",
          name: "HTTP GET /h",
          http: "http://1.2.3.4:80/h",
          interval: "5s",
          timeout: "1s",
          deregistercriticalserviceafter: "10m",
        },
      ],
    );
  });
});
