// Hostile labels (issue 9 item 7): C1 controls and U+2028/U+2029 never reach Consul,
// SERVICE_<port>_* with a port outside 1–65535 is an error line, check paths are
// paths, and a container's default ID is that container's, even while it is stopped.
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { createLogger, type Fields } from "../../lib/log.ts";
import { containerInstances } from "../../services/registrator/src/core/instances.ts";
import { defaultIdName, resolveClaims } from "../../services/registrator/src/core/plan.ts";
import { isCheckPath } from "../../services/registrator/src/core/service-keys.ts";
import type { ContainerFacts } from "../../services/registrator/src/core/types.ts";
import { hasControlChars, isValidTag } from "../../services/registrator/src/core/validate.ts";
import { createMetrics } from "../../services/registrator/src/metrics.ts";
import { Reconciler } from "../../services/registrator/src/reconciler.ts";
import {
  containerEvent,
  facts,
  FakeDocker,
  FakeRegistry,
  mappingOptions,
} from "../helpers/registrator-fakes.ts";
import { waitFor } from "../helpers/wait.ts";

const map = (over: Partial<ContainerFacts>) => containerInstances(facts(over), mappingOptions());
const text = (m: { problems: { message: string }[] }) => m.problems.map((p) => p.message).join("\n");
/** Every string inside a value (keys included), as written: not JSON-escaped. */
const written = (v: unknown): string[] =>
  typeof v === "string"
    ? [v]
    : Array.isArray(v)
      ? v.flatMap(written)
      : v && typeof v === "object"
        ? Object.entries(v).flatMap(([k, x]) => [k, ...written(x)])
        : [];

describe("hostile values", () => {
  const hostile = ["\u0085", "\u009b", "\u0080", "\u2028", "\u2029", "\u0000", "\u001b", "\u007f"];

  it("C0, DEL, C1 and the Unicode line/paragraph separators are control characters", () => {
    for (const c of hostile) {
      assert.ok(hasControlChars(`a${c}b`), JSON.stringify(c));
      assert.ok(!isValidTag(`a${c}b`), JSON.stringify(c));
    }
    assert.ok(!hasControlChars("caf\u00e9 \u00a0 \u00a9 \u4e2d"), "printable non-ASCII stays allowed");
  });

  it("in tags and meta they are dropped with a line naming the key; nothing of it is written", () => {
    for (const c of hostile) {
      const m = map({ labels: { SERVICE_TAGS: `ok,bad${c}tag`, SERVICE_OWNER: `x${c}y` } });
      const [i] = m.instances;
      assert.deepEqual(i?.tags, ["ok"], JSON.stringify(c));
      assert.equal(i?.meta.owner, undefined);
      assert.match(text(m), /SERVICE_TAGS: tag "bad\\u[0-9a-f]{4}tag" dropped/);
      assert.match(text(m), /SERVICE_OWNER: meta values must be/);
      // The written strings themselves (JSON.stringify would escape some of them away).
      assert.ok(!written(m.instances).some((v) => v.includes(c)), "no hostile character in what is written");
    }
  });

  it("SERVICE_<port>_* with a port outside 1–65535 is an error line, never meta", () => {
    for (const key of [
      "SERVICE_-1_NAME",
      "SERVICE_0_NAME",
      "SERVICE_65536_NAME",
      "SERVICE_+80_NAME",
      "SERVICE_8a_NAME",
    ]) {
      const m = map({ labels: { [key]: "x" } });
      assert.equal(m.instances.length, 1, key);
      assert.deepEqual(
        Object.keys(m.instances[0]!.meta).filter((k) => !k.startsWith("dockside_")),
        [],
        `${key} is not meta`,
      );
      assert.match(text(m), /is not a port number/, key);
    }
  });

  it("check and readiness paths are paths on the container: not //host, no @, no scheme", () => {
    for (const bad of [
      "//169.254.169.254/latest",
      "/@169.254.169.254/",
      "http://169.254.169.254/",
      "/a@b",
      "x/y",
    ]) {
      assert.ok(!isCheckPath(bad), bad);
      for (const key of ["SERVICE_CHECK_HTTP", "SERVICE_CHECK_HTTPS", "SERVICE_READY_HTTP"]) {
        const m = map({ labels: { [key]: bad } });
        assert.deepEqual(m.instances[0]?.checks, [], `${key}=${bad}`);
        assert.match(text(m), new RegExp(`${key}.*not a URL path`));
      }
    }
    for (const good of ["/health", "/a/b?x=1", "/", "/a//b"]) assert.ok(isCheckPath(good), good);
  });
});

describe("default IDs belong to their container", () => {
  it("the shape <container name>:<port>[:udp]", () => {
    assert.equal(defaultIdName("web-1:8080"), "web-1");
    assert.equal(defaultIdName("web-1:53:udp"), "web-1");
    assert.equal(defaultIdName("web-1:0"), undefined);
    assert.equal(defaultIdName("plain"), undefined);
  });

  it("a label cannot take another container's default ID, even while that container is stopped", () => {
    const thief = containerInstances(
      facts({ labels: { SERVICE_ID: "owner:8080" } }),
      mappingOptions(),
    ).instances;
    const claims = resolveClaims(thief, {
      foreignIds: new Set(),
      currentOwner: () => undefined,
      created: () => "",
      defaultOwner: (id) => (id === "owner:8080" ? { id: "owner-container-id", name: "owner" } : undefined),
    });
    assert.deepEqual(claims.kept, []);
    assert.match(
      claims.rejected[0]!.reason,
      /default ID of container owner, which keeps it even while stopped/,
    );
  });

  const running: Reconciler[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((r) => r.stop()));
  });

  it("against the reconciler: refused while the owner is stopped; the owner gets it when it starts", async () => {
    const docker = new FakeDocker();
    const registry = new FakeRegistry();
    const logs: Fields[] = [];
    const r = new Reconciler({
      docker,
      registry,
      mapping: mappingOptions(),
      resyncMs: 3_600_000,
      retryMaxMs: 100,
      retryInitialMs: 10,
      ready: { intervalMs: 10, timeoutMs: 100, concurrency: 4 },
      log: createLogger({
        service: "test",
        level: "debug",
        write: (l) => logs.push(JSON.parse(l) as Fields),
      }),
      metrics: createMetrics({ defaultMetrics: false }),
    });
    running.push(r);
    const owner = docker.add(facts({ name: "owner", running: false }));
    r.start();
    await r.synced;
    const thief = docker.add(facts({ name: "thief", labels: { SERVICE_ID: "owner:8080" } }));
    docker.emit(containerEvent("start", thief));
    await waitFor(() => logs.some((l) => /default ID of container owner/.test(String(l.reason))), {
      what: "the refusal",
      timeoutMs: 2000,
    });
    assert.equal(registry.get("owner:8080"), undefined, "not taken while the owner is stopped");

    docker.containers.get(owner.id)!.running = true;
    docker.emit(containerEvent("start", owner));
    await waitFor(() => registry.get("owner:8080")?.meta.dockside_container === owner.id, {
      what: "the owner registered under its default ID",
      timeoutMs: 2000,
    });
  });
});
