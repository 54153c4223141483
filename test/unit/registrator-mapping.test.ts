// The pure core: container facts → service instances. Every rule of issue 3's
// Metadata, Addresses, Health and Bad input sections has a case here.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  containerInstances,
  defaultServiceName,
  imageBaseName,
  type RuntimeState,
} from "../../services/registrator/src/core/instances.ts";
import type { ContainerFacts, MappingOptions } from "../../services/registrator/src/core/types.ts";
import { isValidId, isValidName, isValidTag } from "../../services/registrator/src/core/validate.ts";
import { facts, mappingOptions } from "../helpers/registrator-fakes.ts";

function map(over: Partial<ContainerFacts>, opts: Partial<MappingOptions> = {}, rt?: RuntimeState) {
  return containerInstances(facts(over), mappingOptions(opts), rt);
}
function one(over: Partial<ContainerFacts>, opts: Partial<MappingOptions> = {}, rt?: RuntimeState) {
  const m = map(over, opts, rt);
  assert.equal(m.instances.length, 1, `expected one instance; problems: ${JSON.stringify(m.problems)}`);
  return { ...m.instances[0]!, problems: m.problems };
}
const messages = (m: { problems: { message: string }[] }) => m.problems.map((p) => p.message).join("\n");
const ready = (ids: string[]): RuntimeState => ({ draining: false, ready: (id) => ids.includes(id) });

describe("service names", () => {
  it("default to the image name without registry, path, tag or digest", () => {
    assert.equal(imageBaseName("registry.example.com:5000/team/web:1.2"), "web");
    assert.equal(imageBaseName("web@sha256:" + "a".repeat(64)), "web");
    assert.equal(imageBaseName("library/redis"), "redis");
    assert.equal(imageBaseName("sha256:" + "b".repeat(64)), "");
    assert.equal(one({ image: "registry.example.com:5000/team/web:1.2" }).name, "web");
  });
  it("prefer the compose service, cleaned of characters DNS cannot take", () => {
    assert.equal(
      defaultServiceName({ labels: { "com.docker.compose.service": "api" }, image: "x/y" }),
      "api",
    );
    assert.equal(one({ labels: { "com.docker.compose.service": "my.api" } }).name, "my-api");
  });
  it("take SERVICE_NAME from env or labels, labels winning", () => {
    assert.equal(one({ env: { SERVICE_NAME: "from-env" } }).name, "from-env");
    assert.equal(
      one({ env: { SERVICE_NAME: "from-env" }, labels: { SERVICE_NAME: "from-label" } }).name,
      "from-label",
    );
  });
  it("an image ID gives no name: skipped with a reason", () => {
    const m = map({ image: "sha256:" + "c".repeat(64) });
    assert.equal(m.instances.length, 0);
    assert.match(messages(m), /no SERVICE_NAME, and neither the compose service nor the image/);
  });
  it("a name Consul or nginx cannot take skips the instance and says why", () => {
    for (const bad of ["bad name", "x;y{}", "$(rm -rf /)", "wéb", "a".repeat(64), "-lead", "dot.ted"]) {
      const m = map({ labels: { SERVICE_NAME: bad } });
      assert.equal(m.instances.length, 0, bad);
      assert.equal(m.problems.length, 1, bad);
      assert.equal(m.problems[0]!.effect, "skipped");
      assert.match(m.problems[0]!.message, /label SERVICE_NAME=.*service names may use/);
    }
  });
});

describe("several ports", () => {
  const two = { exposed: ["8080/tcp", "9090/tcp"] };
  it("give one instance per port, named name-port", () => {
    const m = map({ ...two, labels: { SERVICE_NAME: "web" } });
    assert.deepEqual(
      m.instances.map((i) => [i.name, i.port]),
      [
        ["web-8080", 8080],
        ["web-9090", 9090],
      ],
    );
  });
  it("unless named per port", () => {
    const m = map({ ...two, labels: { SERVICE_NAME: "web", SERVICE_9090_NAME: "metrics" } });
    assert.deepEqual(
      m.instances.map((i) => i.name),
      ["web-8080", "metrics"],
    );
  });
  it("take per-port settings over general ones", () => {
    const m = map({
      ...two,
      labels: { SERVICE_TAGS: "a", SERVICE_9090_TAGS: "b", SERVICE_REGION: "eu", SERVICE_9090_REGION: "us" },
    });
    assert.deepEqual(m.instances[0]!.tags, ["a"]);
    assert.deepEqual(m.instances[1]!.tags, ["b"]);
    assert.equal(m.instances[0]!.meta.region, "eu");
    assert.equal(m.instances[1]!.meta.region, "us");
  });
  it("SERVICE_<port>_IGNORE leaves out just that port", () => {
    const m = map({ ...two, labels: { SERVICE_9090_IGNORE: "true" } });
    assert.deepEqual(
      m.instances.map((i) => i.port),
      [8080],
    );
  });
});

describe("--explicit", () => {
  it("registers only containers, or ports, that set a name", () => {
    assert.equal(map({}, { explicit: true }).instances.length, 0);
    assert.equal(map({ labels: { SERVICE_NAME: "web" } }, { explicit: true }).instances.length, 1);
    const m = map(
      { exposed: ["8080/tcp", "9090/tcp"], labels: { SERVICE_9090_NAME: "metrics" } },
      { explicit: true },
    );
    assert.deepEqual(
      m.instances.map((i) => i.name),
      ["metrics"],
    );
  });
});

describe("service IDs", () => {
  it("default to container name and port, :udp for UDP", () => {
    assert.equal(one({ name: "web-1" }).id, "web-1:8080");
    assert.equal(one({ name: "dns", exposed: ["53/udp"] }).id, "dns:53:udp");
  });
  it("SERVICE_ID is used as is for one port, suffixed with the port for several", () => {
    assert.equal(one({ labels: { SERVICE_ID: "web-a" } }).id, "web-a");
    const m = map({
      exposed: ["8080/tcp", "9090/tcp"],
      labels: { SERVICE_ID: "web-a", SERVICE_9090_ID: "m-a" },
    });
    assert.deepEqual(
      m.instances.map((i) => i.id),
      ["web-a:8080", "m-a"],
    );
  });
  it("an unusable SERVICE_ID is dropped for the default, with a reason", () => {
    const r = one({ name: "web-1", labels: { SERVICE_ID: "../../etc/passwd" } });
    assert.equal(r.id, "web-1:8080");
    assert.match(messages(r), /SERVICE_ID.*using the default ID/);
  });
});

describe("tags and meta", () => {
  it("SERVICE_TAGS are split, trimmed, de-duplicated, and --tags are added", () => {
    assert.deepEqual(
      one({ labels: { SERVICE_TAGS: " http , api,,http" } }, { extraTags: ["dc1", "api"] }).tags,
      ["http", "api", "dc1"],
    );
  });
  it("tags with spaces, quotes, braces or control characters are dropped one by one", () => {
    const r = one({ labels: { SERVICE_TAGS: 'http,bad tag,x"y,a{b},ok,new\nline' } });
    assert.deepEqual(r.tags, ["http", "ok"]);
    assert.equal(r.problems.length, 4);
  });
  it("other SERVICE_* keys become meta, lower-cased; the registrator's own keys are added", () => {
    const r = one({ id: "f".repeat(64), labels: { SERVICE_REGION: "eu-1", SERVICE_Owner_Team: "core" } });
    assert.equal(r.meta.region, "eu-1");
    assert.equal(r.meta.owner_team, "core");
    assert.equal(r.meta.dockside_owner, "engine-1");
    assert.equal(r.meta.dockside_container, "f".repeat(64));
    assert.match(r.meta.dockside_spec!, /^[0-9a-f]{16}$/);
  });
  it("meta that Consul would refuse, or that would fake ownership, is dropped", () => {
    const r = one({
      labels: {
        SERVICE_DOCKSIDE_OWNER: "someone-else",
        "SERVICE_a.b": "x",
        "SERVICE_CONSUL-X": "x",
        SERVICE_LONG: "v".repeat(513),
        SERVICE_NL: "a\nb",
      },
    });
    assert.equal(r.meta.dockside_owner, "engine-1");
    for (const k of ["a.b", "consul-x", "long", "nl"]) assert.equal(r.meta[k], undefined, k);
    assert.equal(r.problems.length, 5);
  });
  it("keeps to Consul's 64 meta pairs", () => {
    const labels = Object.fromEntries(Array.from({ length: 70 }, (_, i) => [`SERVICE_K${i}`, "v"]));
    const r = one({ labels });
    assert.equal(Object.keys(r.meta).length, 64);
    assert.match(messages(r), /70 meta keys given/);
  });
});

describe("SERVICE_IGNORE is a real boolean", () => {
  for (const [value, registered] of [
    ["true", false],
    ["1", false],
    ["yes", false],
    ["false", true],
    ["0", true],
    ["", true],
  ] as const) {
    it(`"${value}" → ${registered ? "registered" : "ignored"}`, () => {
      assert.equal(map({ labels: { SERVICE_IGNORE: value } }).instances.length, registered ? 1 : 0);
    });
  }
  it("an unreadable value does not register, and says so", () => {
    const m = map({ labels: { SERVICE_IGNORE: "maybe" } });
    assert.equal(m.instances.length, 0);
    assert.match(messages(m), /not a boolean.*not registering, to be safe/);
  });
});

describe("checks", () => {
  it("none without HEALTHCHECK or check settings: passing by having no check", () => {
    const r = one({});
    assert.deepEqual(r.checks, []);
    assert.equal(r.ttl, undefined);
  });
  it("a HEALTHCHECK gives a TTL check following Docker health", () => {
    const starting = one({ name: "h", healthcheck: true, health: "starting" });
    assert.deepEqual(
      starting.checks.map((c) => [c.id, c.kind, c.ttlMs]),
      [["service:h:8080:health", "ttl", 3_600_000]],
    );
    assert.equal(starting.ttl?.status, "critical");
    assert.equal(one({ healthcheck: true, health: "healthy" }).ttl?.status, "passing");
    assert.equal(one({ healthcheck: true, health: "unhealthy" }).ttl?.status, "critical");
  });
  it("SERVICE_CHECK_HTTP, _HTTPS and _TCP target the registered address and port", () => {
    const r = one({
      networks: { bridge: "172.17.0.9" },
      labels: {
        SERVICE_CHECK_HTTP: "/health?x=1",
        SERVICE_CHECK_HTTPS: "/secure",
        SERVICE_CHECK_TCP: "true",
        SERVICE_CHECK_INTERVAL: "5s",
        SERVICE_CHECK_TIMEOUT: "2s",
        SERVICE_CHECK_DEREGISTER_AFTER: "10m",
      },
    });
    assert.deepEqual(
      r.checks.map((c) => [c.kind, c.target, c.intervalMs, c.timeoutMs, c.deregisterAfterMs]),
      [
        ["http", "http://172.17.0.9:8080/health?x=1", 5000, 2000, 600_000],
        ["http", "https://172.17.0.9:8080/secure", 5000, 2000, 600_000],
        ["tcp", "172.17.0.9:8080", 5000, 2000, 600_000],
      ],
    );
    assert.equal(r.ttl, undefined);
  });
  it("a HEALTHCHECK and an HTTP check together give both", () => {
    const r = one({ healthcheck: true, health: "healthy", labels: { SERVICE_CHECK_HTTP: "/h" } });
    assert.deepEqual(
      r.checks.map((c) => c.kind),
      ["ttl", "http"],
    );
  });
  it("absurd intervals and timeouts are dropped for the defaults, with a reason", () => {
    const cases: [string, string][] = [
      ["SERVICE_CHECK_INTERVAL", "1ms"],
      ["SERVICE_CHECK_INTERVAL", "1000h"],
      ["SERVICE_CHECK_INTERVAL", "banana"],
      ["SERVICE_CHECK_INTERVAL", "-5s"],
      ["SERVICE_CHECK_TIMEOUT", "1ms"],
      ["SERVICE_CHECK_DEREGISTER_AFTER", "5s"],
    ];
    for (const [key, value] of cases) {
      const r = one({ labels: { SERVICE_CHECK_HTTP: "/h", [key]: value } });
      assert.equal(r.checks[0]!.intervalMs, 10_000, `${key}=${value}`);
      assert.equal(r.checks[0]!.timeoutMs, undefined);
      assert.equal(r.checks[0]!.deregisterAfterMs, undefined);
      assert.equal(r.problems.length, 1, `${key}=${value}`);
      assert.match(r.problems[0]!.message, new RegExp(key));
    }
  });
  it("a check path that is not a URL path is dropped", () => {
    const r = one({ labels: { SERVICE_CHECK_HTTP: "health check" } });
    assert.deepEqual(r.checks, []);
    assert.match(messages(r), /not a URL path/);
  });
  it("SERVICE_CHECK_TCP must be a boolean", () => {
    assert.deepEqual(one({ labels: { SERVICE_CHECK_TCP: "false" } }).checks, []);
    const r = one({ labels: { SERVICE_CHECK_TCP: "sure" } });
    assert.deepEqual(r.checks, []);
    assert.match(messages(r), /SERVICE_CHECK_TCP.*not a boolean/);
  });
});

describe("typos and unsupported keys", () => {
  it("check-like keys that are not known are dropped, not turned into meta", () => {
    const r = one({
      labels: { SERVICE_CHECK_HTTTP: "/h", SERVICE_CHECK_INTERVALL: "5s", SERVICE_CHECK_FOO: "x" },
    });
    assert.deepEqual(r.checks, []);
    assert.equal(r.meta.check_htttp, undefined);
    assert.match(
      messages(r),
      /SERVICE_CHECK_HTTTP is not a known setting; did you mean SERVICE_CHECK_HTTP\?/,
    );
    assert.match(messages(r), /SERVICE_CHECK_INTERVALL.*did you mean SERVICE_CHECK_INTERVAL\?/);
    assert.match(messages(r), /SERVICE_CHECK_FOO is not a known setting/);
  });
  it("near misses of other keys are caught too", () => {
    const r = one({ labels: { SERVICE_TAG: "http", SERVICE_NAEM: "x", SERVICE_IGONRE: "true" } });
    assert.match(messages(r), /SERVICE_TAG .*did you mean SERVICE_TAGS\?/);
    assert.match(messages(r), /SERVICE_NAEM .*did you mean SERVICE_NAME\?/);
    assert.match(messages(r), /SERVICE_IGONRE .*did you mean SERVICE_IGNORE\?/);
  });
  it("ordinary meta keys are not mistaken for typos", () => {
    const r = one({
      labels: { SERVICE_REGION: "a", SERVICE_TEAM: "b", SERVICE_VERSION: "c", SERVICE_ZONE: "d" },
    });
    assert.deepEqual(r.problems, []);
  });
  it("registrator check kinds this one does not run are named as such", () => {
    const r = one({ labels: { SERVICE_CHECK_SCRIPT: "curl x", SERVICE_CHECK_TTL: "30s" } });
    assert.deepEqual(r.checks, []);
    assert.match(messages(r), /SERVICE_CHECK_SCRIPT is not supported by this registrator/);
  });
});

describe("ports", () => {
  it("malformed port keys and ports the container does not expose are reported", () => {
    const r = one({ labels: { SERVICE_80x_NAME: "a", SERVICE_99999_NAME: "b", SERVICE_9090_NAME: "c" } });
    assert.equal(r.name, "app");
    assert.match(messages(r), /"80x" is not a port number/);
    assert.match(messages(r), /"99999" is not a port number/);
    assert.match(
      messages(r),
      /SERVICE_9090_\* settings refer to port 9090, which the container does not expose/,
    );
  });
  it("a container without exposed ports has no instance and no complaint", () => {
    const m = map({ exposed: [] });
    assert.deepEqual(m, { instances: [], problems: [] });
  });
  it("SCTP ports are left out with a reason; a port range is not a set of services", () => {
    const sctp = map({ exposed: ["132/sctp", "8080/tcp"] });
    assert.equal(sctp.instances.length, 1);
    assert.match(messages(sctp), /only tcp and udp/);
    const range = map({ exposed: Array.from({ length: 100 }, (_, i) => `${9000 + i}/tcp`) });
    assert.equal(range.instances.length, 0);
    assert.match(messages(range), /exposes 100 ports/);
  });
});

describe("addresses, internal mode", () => {
  const twoNets = { networks: { front: "10.0.1.5", back: "10.0.2.5" } };
  it("use the only network's IP and the container port", () => {
    const r = one({
      networks: { mynet: "10.1.2.3" },
      bindings: { "8080/tcp": [{ hostIp: "0.0.0.0", hostPort: 32768 }] },
    });
    assert.equal(r.address, "10.1.2.3");
    assert.equal(r.port, 8080, "never the host port with a container IP");
  });
  it("several networks and no choice: skipped with a reason, never a random pick", () => {
    const m = map(twoNets);
    assert.equal(m.instances.length, 0);
    assert.match(
      messages(m),
      /is on several networks \(back, front\); choose one with SERVICE_NETWORK or --network/,
    );
  });
  it("--network, or the SERVICE_NETWORK label over it, chooses", () => {
    assert.equal(one(twoNets, { network: "back" }).address, "10.0.2.5");
    assert.equal(
      one({ ...twoNets, labels: { SERVICE_NETWORK: "front" } }, { network: "back" }).address,
      "10.0.1.5",
    );
  });
  it("a chosen network the container is not on skips it", () => {
    assert.match(
      messages(map(twoNets, { network: "other" })),
      /not attached to network "other" \(--network\)/,
    );
    assert.match(messages(map({ labels: { SERVICE_NETWORK: "x" } })), /SERVICE_NETWORK names "x"/);
  });
  it("the compose project network is found by itself", () => {
    const r = one({
      labels: { "com.docker.compose.project": "lab" },
      networks: { lab_default: "10.5.0.2", bridge: "172.17.0.2" },
    });
    assert.equal(r.address, "10.5.0.2");
    const two = map({
      labels: { "com.docker.compose.project": "lab" },
      networks: { lab_default: "10.5.0.2", lab_back: "10.6.0.2" },
    });
    assert.match(messages(two), /several networks of compose project "lab"/);
  });
  it("host, container and none network modes", () => {
    assert.match(messages(map({ networkMode: "host", networks: { host: "" } })), /set --host-ip/);
    const h = one({ networkMode: "host", networks: { host: "" } }, { hostIp: "192.0.2.1" });
    assert.deepEqual([h.address, h.port], ["192.0.2.1", 8080]);
    assert.match(messages(map({ networkMode: "container:abc", networks: {} })), /another container/);
    assert.match(messages(map({ networkMode: "none", networks: {} })), /networking disabled/);
  });
  it("no IPv4 address on the chosen network", () => {
    assert.match(messages(map({ networks: { v6only: "" } })), /no IPv4 address on network "v6only"/);
  });
});

describe("addresses, published mode", () => {
  const published = { "8080/tcp": [{ hostIp: "0.0.0.0", hostPort: 32768 }] };
  it("use --host-ip and the published host port", () => {
    const r = one({ bindings: published }, { addressMode: "published", hostIp: "192.0.2.10" });
    assert.deepEqual([r.address, r.port], ["192.0.2.10", 32768]);
  });
  it("a binding on a specific host address is used as is", () => {
    const r = one(
      { bindings: { "8080/tcp": [{ hostIp: "127.0.0.1", hostPort: 40000 }] } },
      { addressMode: "published", hostIp: "192.0.2.10" },
    );
    assert.deepEqual([r.address, r.port], ["127.0.0.1", 40000]);
  });
  it("unpublished ports are not registered and do not make a group", () => {
    const m = map(
      { exposed: ["8080/tcp", "9090/tcp"], bindings: published, labels: { SERVICE_NAME: "web" } },
      { addressMode: "published", hostIp: "192.0.2.10" },
    );
    assert.deepEqual(
      m.instances.map((i) => [i.name, i.port]),
      [["web", 32768]],
    );
  });
  it("published on all interfaces without --host-ip: skipped with a reason", () => {
    assert.match(messages(map({ bindings: published }, { addressMode: "published" })), /set --host-ip/);
  });
});

describe("runtime state", () => {
  it("stopped, paused, draining and filtered-out containers have no instances", () => {
    assert.equal(map({ running: false }).instances.length, 0);
    assert.equal(map({ paused: true }).instances.length, 0);
    assert.equal(map({}, {}, { draining: true, ready: () => false }).instances.length, 0);
    assert.equal(
      map({ labels: { team: "a" } }, { labelFilter: [{ key: "team", value: "b" }] }).instances.length,
      0,
    );
    assert.equal(
      map({ labels: { team: "b" } }, { labelFilter: [{ key: "team", value: "b" }] }).instances.length,
      1,
    );
    assert.equal(map({ labels: { x: "1" } }, { labelFilter: [{ key: "x" }] }).instances.length, 1);
  });
});

describe("readiness (SERVICE_READY_HTTP)", () => {
  it("without a HEALTHCHECK: a TTL check, critical and probed until ready, then passing", () => {
    const waiting = one({ name: "r", labels: { SERVICE_READY_HTTP: "/readyz" } });
    assert.deepEqual(
      waiting.checks.map((c) => [c.kind, c.name]),
      [["ttl", "readiness"]],
    );
    assert.equal(waiting.ttl?.status, "critical");
    assert.equal(waiting.readyPath, "/readyz");
    const done = one({ name: "r", labels: { SERVICE_READY_HTTP: "/readyz" } }, {}, ready(["r:8080"]));
    assert.equal(done.ttl?.status, "passing");
    assert.equal(done.readyPath, undefined);
  });
  it("with a HEALTHCHECK: the probe makes it passing early; Docker's verdict still rules after", () => {
    const labels = { SERVICE_READY_HTTP: "/readyz" };
    const hc = { name: "r", labels, healthcheck: true };
    assert.equal(one({ ...hc, health: "starting" }).ttl?.status, "critical");
    assert.equal(one({ ...hc, health: "starting" }, {}, ready(["r:8080"])).ttl?.status, "passing");
    assert.equal(one({ ...hc, health: "unhealthy" }, {}, ready(["r:8080"])).ttl?.status, "critical");
    assert.equal(one({ ...hc, health: "unhealthy" }).readyPath, undefined, "no probing once Docker decided");
    assert.equal(one({ ...hc, health: "healthy" }).ttl?.status, "passing");
  });
  it("a path that is not a URL path is dropped (and no check is added for it)", () => {
    const r = one({ labels: { SERVICE_READY_HTTP: "readyz" } });
    assert.deepEqual(r.checks, []);
    assert.match(messages(r), /SERVICE_READY_HTTP.*not a URL path/);
  });
});

describe("spec digest", () => {
  it("changes with what Consul holds, not with check status", () => {
    const base = { id: "d".repeat(64), name: "x", healthcheck: true, networks: { bridge: "172.17.0.2" } };
    const a = one({ ...base, health: "starting" });
    const b = one({ ...base, health: "healthy" });
    const c = one({ ...base, health: "healthy", labels: { SERVICE_TAGS: "new" } });
    assert.equal(a.meta.dockside_spec, b.meta.dockside_spec);
    assert.notEqual(b.meta.dockside_spec, c.meta.dockside_spec);
  });
});

describe("hostile input, generated", () => {
  const key = fc.oneof(
    fc.constantFrom("NAME", "ID", "TAGS", "IGNORE", "CHECK_HTTP", "CHECK_INTERVAL", "NETWORK", "READY_HTTP"),
    fc.string({ maxLength: 12 }),
    fc.constantFrom("8080_NAME", "8080_ID", "8080_TAGS", "1_NAME", "x_Y"),
  );
  const labels = fc.dictionary(
    key.map((k) => `SERVICE_${k}`),
    fc.string({ maxLength: 40, unit: "binary" }),
    { maxKeys: 8 },
  );
  it("never throws, and everything it emits is valid for Consul", () => {
    fc.assert(
      fc.property(labels, labels, (l, e) => {
        const m = containerInstances(
          facts({ labels: l, env: e, exposed: ["8080/tcp", "9090/udp"] }),
          mappingOptions(),
        );
        for (const i of m.instances) {
          assert.ok(isValidName(i.name), i.name);
          assert.ok(isValidId(i.id), i.id);
          for (const t of i.tags) assert.ok(isValidTag(t), t);
          assert.ok(Object.keys(i.meta).length <= 64);
          for (const [k, v] of Object.entries(i.meta)) {
            assert.match(k, /^[a-z0-9_-]{1,128}$/);
            assert.ok(v.length <= 512);
          }
          assert.equal(i.meta.dockside_owner, "engine-1");
        }
        const ids = m.instances.map((i) => i.id);
        assert.equal(new Set(ids).size, ids.length, "IDs are unique within a container");
      }),
      { numRuns: 400 },
    );
  });
});
