// What the templater loads to run: in the real edge image, with Consul and a routed service, the
// built-in modules it has loaded a few seconds in. Each one listed here cost RSS at start for
// code the templater never runs (bench/README.md, "Templater RSS: what Node loads at start").

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { registerInstance, startConsul } from "../helpers/consul.ts";
import { createNetwork } from "../helpers/docker.ts";
import { startEdge } from "../helpers/edge.ts";
import { assertNotLoaded, loadedModulesProbe } from "../helpers/loaded-modules.ts";
import { testScope } from "../helpers/scope.ts";
import { waitFor } from "../helpers/wait.ts";

const unused: Record<string, string> = {
  "NativeModule tls":
    "the consul library's HTTP layer (papi) requires node:https at its top; the templater reads Consul through lib/consul-client.ts's consulRequest, and only the registrator imports lib/consul-library.ts",
  "NativeModule https": "as for tls",
  "NativeModule zlib": "prom-client's Pushgateway client (scripts/build.ts leaves it out)",
  "NativeModule worker_threads":
    "esbuild's interop copied node:util's exports, which runs util's lazy getters (scripts/build.ts, esmBuiltinStub)",
  "NativeModule internal/util/diff": "as for worker_threads",
};

describe("templater start", { timeout: 120_000 }, () => {
  const scope = testScope();

  it("loads none of the built-ins it never uses, with a service routed and pushed", async () => {
    const network = await createNetwork(scope);
    const consul = await startConsul(scope, { network, alias: "consul" });
    await registerInstance(consul.client, { id: "web-1", name: "web", address: "10.99.0.1" });
    const probe = loadedModulesProbe(scope, { afterMs: 4000 });
    const edge = await startEdge(scope, {
      network,
      env: { NODE_OPTIONS: probe.nodeOptions },
      binds: [probe.bind],
    });
    await waitFor(async () => ((await edge.status()).services ?? []).some((s) => s.name === "web"), {
      what: "web routed",
      timeoutMs: 20_000,
    });
    const loaded = await waitFor(async () => probe.read((await edge.logs()).stderr)?.modules, {
      what: "the probe's list of loaded modules",
      timeoutMs: 20_000,
    });
    // The probe ran inside the templater, after its start: it saw what the work needs.
    for (const needed of ["NativeModule http", "NativeModule child_process", "NativeModule crypto"]) {
      assert.ok(loaded.includes(needed), `${needed} not in: ${loaded.join(", ")}`);
    }
    assertNotLoaded(loaded, unused);
  });
});
