// Base images are chosen by detecting the registry, not by a flag: the same code picks
// upstream images when a registry answers and local stand-ins when none does.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { execa } from "execa";
import { chooseBases, probeRegistry } from "../../scripts/images.ts";
import { baseRoles, localImages, upstreamImages } from "../../scripts/lib/base-images.ts";
import { requireDocker } from "../helpers/docker.ts";
import { repoRoot } from "../helpers/images.ts";

async function fakeRegistry(): Promise<{ url: string; close: () => void }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(401, { "docker-distribution-api-version": "registry/2.0" }).end("{}");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/`,
    close: () => server.close(),
  };
}

describe("registry detection", { timeout: 60_000 }, () => {
  it("a registry that answers (even 401) is reachable; a closed port is not", async () => {
    const reg = await fakeRegistry();
    try {
      assert.equal((await probeRegistry(reg.url)).reachable, true);
    } finally {
      reg.close();
    }
    const closed = await probeRegistry(reg.url, 1000);
    assert.equal(closed.reachable, false);
    assert.match(closed.detail, /ECONNREFUSED/);
  });

  it("chooses upstream images when the registry answers and local ones when it does not", async () => {
    await requireDocker();
    const reg = await fakeRegistry();
    const saved = process.env.DOCKSIDE_REGISTRY_PROBE_URL;
    try {
      process.env.DOCKSIDE_REGISTRY_PROBE_URL = reg.url;
      const withRegistry = await chooseBases();
      reg.close();
      const withoutRegistry = await chooseBases();
      for (const r of baseRoles) {
        const a = withRegistry.find((c) => c.role === r)!;
        const b = withoutRegistry.find((c) => c.role === r)!;
        assert.equal(a.image, upstreamImages[r], `${r} with a registry`);
        if (a.source === "upstream-present") continue; // already pulled on this machine: nothing to detect
        assert.equal(a.source, "upstream-pull");
        assert.equal(b.source, "local", `${r} without a registry`);
        assert.equal(b.image, localImages[r]);
        assert.match(b.reason, /registry unreachable/);
      }
    } finally {
      if (saved === undefined) delete process.env.DOCKSIDE_REGISTRY_PROBE_URL;
      else process.env.DOCKSIDE_REGISTRY_PROBE_URL = saved;
      reg.close();
    }
  });
});

describe("bootstrap", { timeout: 120_000 }, () => {
  it("takes no action on a machine it already set up, and says so", async () => {
    const r = await execa("bash", ["scripts/bootstrap.sh"], { cwd: repoRoot, reject: false });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /nothing to do: everything was already in place/);
    assert.doesNotMatch(r.stdout, /installed|started/);
  });
});
