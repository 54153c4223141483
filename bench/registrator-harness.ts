// Shared by the registrator benchmarks: a Consul agent, the registrator as the shipped
// image runs it, labelled containers, and clean-up that also runs on Ctrl-C. Every
// container carries dockside.test=1 and a label unique to the run.

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { PassThrough } from "node:stream";
import { parseArgs } from "node:util";
import type Docker from "dockerode";
import { execa } from "execa";
import { startConsul, type ConsulHandle } from "../test/helpers/consul.ts";
import {
  docker,
  dockerSocketGroup,
  requireDocker,
  testLabel,
  type TestNetwork,
} from "../test/helpers/docker.ts";
import { images, repoRoot } from "../test/helpers/images.ts";
import { Scope } from "../test/helpers/scope.ts";

export const benchLabel = "dockside.bench.run";

export interface Bench {
  run: string;
  scope: Scope;
  /** Runs every clean-up step once (also on SIGINT/SIGTERM). */
  cleanup(): Promise<void>;
}

export function startBench(name: string): Bench {
  const run = randomBytes(5).toString("hex");
  const scope = new Scope();
  let done: Promise<void> | undefined;
  const cleanup = () => {
    done ??= (async () => {
      const started = Date.now();
      const removed = await removeRunContainers(run);
      await scope.close();
      console.log(
        `${name}: cleaned up (${removed} containers, ${((Date.now() - started) / 1000).toFixed(1)} s)`,
      );
    })();
    return done;
  };
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      console.log(`${name}: ${sig}; cleaning up`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  return { run, scope, cleanup };
}

export function intFlag(name: string, fallback: number): number {
  const { values } = parseArgs({ options: { [name]: { type: "string" } }, strict: false });
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive whole number`);
  return n;
}

export async function removeRunContainers(run: string): Promise<number> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${benchLabel}=${run}`] } });
  // One at a time: removing 1,000 containers 8 at a time left endpoints behind in engine 20.10,
  // and the network could then not be removed until the engine restarted.
  for (const c of list) {
    await docker
      .getContainer(c.Id)
      .remove({ force: true, v: true })
      .catch(() => {});
  }
  return list.length;
}

export async function benchNetwork(bench: Bench): Promise<TestNetwork> {
  await requireDocker();
  const name = `dockside-bench-${bench.run}`;
  const net = await docker.createNetwork({ Name: name, Driver: "bridge", Labels: { [testLabel]: "1" } });
  bench.scope.defer(`network ${name}`, async () => {
    // Engine 20.10 can take a while to forget the endpoints of many removed containers.
    for (let attempt = 1; ; attempt++) {
      try {
        return await net.remove();
      } catch (err) {
        if (attempt === 15) {
          throw new Error(`${(err as Error).message}; remove it later: docker network rm ${name}`, {
            cause: err,
          });
        }
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
  });
  return { name, id: net.id };
}

/** A Consul agent on the bench network, reachable there as consul:8500. */
export function benchConsul(
  bench: Bench,
  net: TestNetwork,
  opts: { hostPort?: number } = {},
): Promise<ConsulHandle> {
  return startConsul(bench.scope, { network: net, alias: "consul", ...opts });
}

export interface RegistratorContainer {
  container: Docker.Container;
  /** Log records as they arrive. */
  lines: Record<string, unknown>[];
  /** Resolves with the first log record with this message. */
  waitFor(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resident memory of the registrator's process (read on the host from /proc). */
  rssBytes(): number;
  /** The ops endpoint (/health, /metrics) as published on the host. */
  opsUrl: string;
  /** Wall-clock ms just before the container was started. */
  startedAt: number;
}

/**
 * Runs the shipped image (built first by scripts/images.ts) the way the lab does:
 * Docker socket with its group (the image runs non-root), Consul by name on the bench network;
 * scoped to this run's containers.
 */
export async function runRegistratorImage(
  bench: Bench,
  net: TestNetwork,
  extraEnv: string[] = [],
): Promise<RegistratorContainer> {
  await execa(process.execPath, [path.join(repoRoot, "scripts", "images.ts"), "--only", "registrator"], {
    cwd: repoRoot,
  });
  const name = `dockside-bench-registrator-${bench.run}`;
  const container = await docker.createContainer({
    name,
    Image: images().registrator,
    Env: [
      "CONSUL_HTTP_ADDR=consul:8500",
      `REGISTRATOR_LABEL_FILTER=${benchLabel}=${bench.run}`,
      `REGISTRATOR_IDENTITY=bench-${bench.run}`,
      ...extraEnv,
    ],
    Labels: { [testLabel]: "1", [benchLabel]: bench.run },
    ExposedPorts: { "9101/tcp": {} },
    HostConfig: {
      NetworkMode: net.name,
      Binds: ["/var/run/docker.sock:/var/run/docker.sock"],
      // The image runs as a non-root user: the socket's group lets it read the socket.
      GroupAdd: [dockerSocketGroup()],
      PortBindings: { "9101/tcp": [{ HostIp: "127.0.0.1", HostPort: "" }] },
    },
  });
  bench.scope.defer(`container ${name}`, () => container.remove({ force: true }).catch(() => {}));
  const startedAt = wallMs();
  await container.start();
  const info = await container.inspect();
  const pid = info.State.Pid;
  const opsUrl = `http://127.0.0.1:${info.NetworkSettings.Ports["9101/tcp"]![0]!.HostPort}`;

  const lines: Record<string, unknown>[] = [];
  const waiters: { msg: string; resolve: (r: Record<string, unknown>) => void }[] = [];
  const logs = (await container.logs({
    follow: true,
    stdout: true,
    stderr: true,
  })) as NodeJS.ReadableStream & {
    destroy(): void;
  };
  bench.scope.defer("registrator logs", () => logs.destroy());
  const stdout = new PassThrough();
  docker.modem.demuxStream(logs, stdout, process.stderr);
  createInterface({ input: stdout }).on("line", (line) => {
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    lines.push(rec);
    for (const w of waiters.filter((x) => x.msg === rec.msg)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(rec);
    }
  });
  const waitFor = (msg: string, timeoutMs = 60_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const seen = lines.find((l) => l.msg === msg);
      if (seen) return resolve(seen);
      const timer = setTimeout(
        () => reject(new Error(`registrator did not log "${msg}" in ${timeoutMs} ms`)),
        timeoutMs,
      );
      waiters.push({
        msg,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
      });
    });
  return {
    container,
    lines,
    waitFor,
    rssBytes: () => {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      return m ? Number(m[1]) * 1024 : NaN;
    },
    opsUrl,
    startedAt,
  };
}

export const fmt = (ms: number) => `${ms.toFixed(1)} ms`;
/** Wall-clock time with sub-millisecond resolution, comparable to Docker's timeNano. */
export const wallMs = () => performance.timeOrigin + performance.now();
