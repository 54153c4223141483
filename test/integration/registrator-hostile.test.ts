// Hostile labels against the real Docker engine and a real Consul agent (issue 9
// item 7): each case gets its refusal line, and nothing of the hostile value reaches
// Consul; a default ID stays its container's while that container is stopped.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { startConsul } from "../helpers/consul.ts";
import { createNetwork } from "../helpers/docker.ts";
import { catalogInstances, newRun, runWorkload, startTestRegistrator } from "../helpers/registrator.ts";
import { testScope } from "../helpers/scope.ts";
import { waitFor } from "../helpers/wait.ts";
import type { WorkloadOptions } from "../helpers/workload.ts";

describe("registrator and hostile labels", { timeout: 180_000 }, () => {
  const scope = testScope();

  it("C1/U+2028 values, SERVICE_-1_*, //host and @ check paths, and a stopped container's default ID are refused", async () => {
    const run = newRun();
    const net = await createNetwork(scope);
    const consul = await startConsul(scope, { network: net });
    const reg = await startTestRegistrator(scope, { consul, run });
    await reg.synced;
    const workload = (o: WorkloadOptions) => runWorkload(scope, run, net.name, o);
    const refused = (container: string, pattern: RegExp) =>
      waitFor(() => reg.logs.some((l) => l.container === container && pattern.test(String(l.reason))), {
        what: `refusal ${pattern} for ${container}`,
        timeoutMs: 10_000,
      });

    const h = await workload({
      labels: {
        SERVICE_NAME: "hostile",
        SERVICE_TAGS: "ok,nel\u0085tag,ls\u2028tag",
        SERVICE_NOTE: "para\u2029graph",
        "SERVICE_-1_NAME": "neg",
        SERVICE_CHECK_HTTP: "//169.254.169.254/latest/meta-data",
        SERVICE_READY_HTTP: "/@169.254.169.254/",
      },
    });
    await refused(h.name, /SERVICE_TAGS: tag "nel\\u0085tag" dropped/);
    await refused(h.name, /SERVICE_TAGS: tag "ls\\u2028tag" dropped/);
    await refused(h.name, /SERVICE_NOTE: meta values must be/);
    await refused(h.name, /SERVICE_-1_NAME: "-1" is not a port number/);
    await refused(h.name, /SERVICE_CHECK_HTTP=.*not a URL path/);
    await refused(h.name, /SERVICE_READY_HTTP=.*not a URL path/);
    const [seen] = await waitFor(
      async () => {
        const list = await catalogInstances(consul.client, "hostile");
        return list.length === 1 ? list : undefined;
      },
      { what: "hostile registered without the hostile values" },
    );
    assert.deepEqual(seen!.tags, ["ok"]);
    assert.deepEqual(
      Object.keys(seen!.meta).filter((k) => !k.startsWith("dockside_")),
      [],
      "neither note nor -1_name became meta",
    );
    assert.deepEqual(Object.keys(seen!.checks), [], "no check on //host or /@host");

    // The owner of a default ID is stopped; a label asks for that ID.
    const owner = await workload({ labels: { SERVICE_NAME: "owned" } });
    const ownerId = `${owner.name}:8080`;
    await waitFor(async () => (await catalogInstances(consul.client, "owned")).length === 1, {
      what: "owner",
    });
    await owner.container.stop({ t: 1 });
    await waitFor(async () => (await catalogInstances(consul.client, "owned")).length === 0, {
      what: "owner gone while stopped",
    });
    const thief = await workload({ labels: { SERVICE_NAME: "owned", SERVICE_ID: ownerId } });
    await refused(thief.name, /is the default ID of container .*, which keeps it even while stopped/);
    assert.deepEqual(await catalogInstances(consul.client, "owned"), [], "the ID was not taken");
    await owner.container.start();
    await waitFor(
      async () => {
        const list = await catalogInstances(consul.client, "owned");
        return list.length === 1 && list[0]!.id === ownerId && list[0]!.meta.dockside_container === owner.id;
      },
      { what: "the owner back under its own default ID", timeoutMs: 10_000 },
    );
  });
});
