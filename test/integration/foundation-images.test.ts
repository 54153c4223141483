// Base images are chosen by detecting the registry, not by a flag: the same code picks
// upstream images when a registry answers and local stand-ins when none does.
import assert from "node:assert/strict";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { execa } from "execa";
import { chooseBases, probeRegistry } from "../../scripts/images.ts";
import { baseRoles, localImages, type BaseRole } from "../../scripts/lib/base-images.ts";
import { requireDocker } from "../helpers/docker.ts";
import { images, repoRoot } from "../helpers/images.ts";

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
    // Names no machine has, so every role is decided by the registry, whatever was pulled here.
    const absent = Object.fromEntries(
      baseRoles.map((r) => [r, `dockside-test/absent-${r}-${process.pid}:never`]),
    ) as Record<BaseRole, string>;
    try {
      process.env.DOCKSIDE_REGISTRY_PROBE_URL = reg.url;
      const withRegistry = await chooseBases(absent);
      reg.close();
      const withoutRegistry = await chooseBases(absent);
      for (const r of baseRoles) {
        const a = withRegistry.find((c) => c.role === r)!;
        const b = withoutRegistry.find((c) => c.role === r)!;
        assert.deepEqual([a.image, a.source], [absent[r], "upstream-pull"], `${r} with a registry`);
        assert.deepEqual([b.image, b.source], [localImages[r], "local"], `${r} without a registry`);
        assert.match(b.reason, /registry unreachable/);
      }
      // And an upstream image that is present wins without asking the registry.
      const present = { ...absent, busybox: images().busybox };
      const withPresent = await chooseBases(present);
      assert.equal(withPresent.find((c) => c.role === "busybox")!.source, "upstream-present");
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

  it("without root it installs nothing and names what is missing, with how to get it", async () => {
    // As root (CI), run it as `nobody`; otherwise as this user, who is not root either. Either
    // way DOCKER_HOST names a socket that does not exist, so a Docker engine is certainly
    // missing. It runs from a world-readable copy, whose project "Node 24" is a stand-in, so
    // only the host checks are under test.
    const asRoot = process.getuid?.() === 0;
    const dir = mkdtempSync(path.join(os.tmpdir(), "dockside-boot-"));
    try {
      mkdirSync(path.join(dir, "scripts"));
      mkdirSync(path.join(dir, "node_modules", ".bin"), { recursive: true });
      copyFileSync(path.join(repoRoot, "scripts", "bootstrap.sh"), path.join(dir, "scripts", "bootstrap.sh"));
      writeFileSync(path.join(dir, "node_modules", ".bin", "node"), "#!/bin/sh\necho 24\n", { mode: 0o755 });
      chmodSync(dir, 0o755);
      const script = path.join(dir, "scripts", "bootstrap.sh");
      const env = { DOCKER_HOST: `unix://${dir}/no-docker.sock` };
      const r = asRoot
        ? await execa(
            "runuser",
            ["-u", "nobody", "--", "env", `DOCKER_HOST=${env.DOCKER_HOST}`, "bash", script],
            {
              cwd: dir,
              reject: false,
            },
          )
        : await execa("bash", [script], { cwd: dir, reject: false, env });
      assert.match(r.stdout, /not root: will only check, not install/);
      assert.doesNotMatch(r.stdout, /installed|started dockerd/);
      assert.equal(r.exitCode, 1, r.stderr);
      assert.match(
        r.stderr,
        /missing, and not installed here:\n(?: {2}- .*\n)* {2}- a running Docker engine: start Docker Desktop or dockerd/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
