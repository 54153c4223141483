// The real edge image (nginx supervised by the templater) in a container, on a test network
// next to a Consul container. Ports are published on random loopback ports; templates and the
// output directory can be bind-mounted from host directories.

import { chmodSync, copyFileSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type Docker from "dockerode";
import {
  containerLogs,
  demux,
  docker,
  removeContainer,
  requireDocker,
  testLabel,
  uniqueName,
  type TestNetwork,
} from "./docker.ts";
import { images, repoRoot } from "./images.ts";
import { parseMetrics, sampleValue, type Samples } from "./prometheus.ts";
import type { Scope } from "./scope.ts";
import { waitFor } from "./wait.ts";

/** Paths inside the edge image. */
export const edgePaths = {
  templates: "/etc/dockside/templates",
  output: "/var/lib/dockside/nginx",
  /** uid the edge runs as; a bind-mounted output directory must be writable by it. */
  uid: 10101,
};

export interface EdgeOptions {
  network: TestNetwork;
  /** The edge image; default the one scripts/images.ts built (deploy/.env). */
  image?: string;
  /** CONSUL_HTTP_ADDR as seen from the edge; default consul:8500. */
  consulAddr?: string;
  /** Extra templater flags. */
  args?: string[];
  env?: Record<string, string>;
  /** Host directory mounted over the templates directory. */
  templatesDir?: string;
  /** Host directory mounted as the output directory (made writable for the edge's user). */
  outputDir?: string;
  /** tmpfs mounts (path → mount options), e.g. a small output directory to fill up. */
  tmpfs?: Record<string, string>;
  /** Extra bind mounts, host:container[:ro]. */
  binds?: string[];
  name?: string;
  /** Wait until /health answers 200 (default), or only until the ops endpoint answers at all. */
  waitHealthy?: boolean;
}

export interface EdgeHandle {
  id: string;
  name: string;
  container: Docker.Container;
  /** nginx, published: http://127.0.0.1:<port> */
  url: string;
  /** The templater's ops endpoint, published. */
  opsUrl: string;
  exec(cmd: string[]): Promise<{ exitCode: number; output: string }>;
  logs(): Promise<{ stdout: string; stderr: string }>;
  /** JSON log lines of the templater (nginx's access log lines filtered out). */
  logLines(): Promise<Record<string, unknown>[]>;
  metrics(): Promise<Samples>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  status(): Promise<EdgeStatus>;
  /** The generation nginx answers with. */
  generation(): Promise<string>;
}

export interface EdgeStatus {
  nginx: { running: boolean | null; generation: string | null };
  consul: { up: boolean; kind?: string; message?: string | null };
  services: {
    name: string;
    upstream: string[];
    instances: { id: string; status: string; live: boolean }[];
  }[];
  dropped: { service: string; field: string; value: string; reason: string }[];
  /** Instances routed although the catalog alone would not route them (core/hold.ts). */
  held: { service: string; reason: string; instances: string[] }[];
  templates: { source: string; dest: string; error: string | null }[];
  lastError: { stage: string; message: string } | null;
}

/** A host directory holding copies of deploy/nginx/templates/*.hbs, readable by the edge's user. */
export function templatesCopy(scope: Scope): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "dockside-templates-"));
  scope.defer(`templates dir ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  const src = path.join(repoRoot, "deploy", "nginx", "templates");
  for (const f of readdirSync(src)) {
    copyFileSync(path.join(src, f), path.join(dir, f));
    chmodSync(path.join(dir, f), 0o644);
  }
  return dir;
}

/** An empty host directory the edge can write (files in it end up owned by the edge's uid). */
export function outputDir(scope: Scope): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "dockside-output-"));
  scope.defer(`output dir ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o777);
  return dir;
}

function createOptions(opts: EdgeOptions, name: string): Docker.ContainerCreateOptions {
  const binds: string[] = [];
  if (opts.templatesDir) binds.push(`${opts.templatesDir}:${edgePaths.templates}`);
  if (opts.outputDir) binds.push(`${opts.outputDir}:${edgePaths.output}`);
  binds.push(...(opts.binds ?? []));
  const env = { CONSUL_HTTP_ADDR: opts.consulAddr ?? "consul:8500", ...opts.env };
  return {
    name,
    Image: opts.image ?? images().edge,
    Cmd: opts.args ?? [],
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Labels: { [testLabel]: "1" },
    ExposedPorts: { "8080/tcp": {}, "9102/tcp": {} },
    HostConfig: {
      NetworkMode: opts.network.name,
      Binds: binds,
      ...(opts.tmpfs ? { Tmpfs: opts.tmpfs } : {}),
      PortBindings: {
        "8080/tcp": [{ HostIp: "127.0.0.1", HostPort: "" }],
        "9102/tcp": [{ HostIp: "127.0.0.1", HostPort: "" }],
      },
    },
  };
}

function handle(container: Docker.Container, name: string, url: string, opsUrl: string): EdgeHandle {
  const h: EdgeHandle = {
    id: container.id,
    name,
    container,
    url,
    opsUrl,
    async exec(cmd) {
      const e = await container.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
      const stream = await e.start({});
      const chunks: Buffer[] = [];
      await new Promise<void>((resolve, reject) => {
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("end", resolve);
        stream.on("error", reject);
      });
      const out = demux(Buffer.concat(chunks));
      return { exitCode: (await e.inspect()).ExitCode ?? -1, output: out.stdout + out.stderr };
    },
    logs: () => containerLogs(container),
    async logLines() {
      const { stdout, stderr } = await h.logs();
      return (stdout + "\n" + stderr)
        .split("\n")
        .filter((l) => l.startsWith("{") && l.includes('"service":"templater"'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    async metrics() {
      const res = await fetch(`${opsUrl}/metrics`);
      return parseMetrics(await res.text());
    },
    async metric(metricName, labels) {
      return sampleValue(await h.metrics(), metricName, labels);
    },
    async status() {
      return (await (await fetch(`${opsUrl}/status`)).json()) as EdgeStatus;
    },
    async generation() {
      return (
        await (await fetch(`${url}/_dockside/generation`, { headers: { connection: "close" } })).text()
      ).trim();
    },
  };
  return h;
}

/** Starts the edge and waits until nginx serves a first config (its /health answers 200). */
export async function startEdge(scope: Scope, opts: EdgeOptions): Promise<EdgeHandle> {
  await requireDocker();
  const name = opts.name ?? uniqueName("dockside-edge");
  const container = await docker.createContainer(createOptions(opts, name));
  scope.defer(`edge ${name}`, () => removeContainer(container.id));
  await container.start();
  const ports = (await container.inspect()).NetworkSettings.Ports;
  const port = (p: string) => ports[p]?.[0]?.HostPort;
  const h = handle(
    container,
    name,
    `http://127.0.0.1:${port("8080/tcp")}`,
    `http://127.0.0.1:${port("9102/tcp")}`,
  );
  await waitFor(
    async () => {
      const state = (await container.inspect()).State;
      if (!state.Running) {
        const { stdout, stderr } = await h.logs();
        throw new Error(`edge exited (${state.ExitCode}):\n${stdout}\n${stderr}`);
      }
      const status = (await fetch(`${h.opsUrl}/health`)).status;
      return opts.waitHealthy === false ? status > 0 : status === 200;
    },
    { what: "the edge to serve its first config", timeoutMs: 30_000, intervalMs: 100 },
  ).catch(async (err: Error) => {
    const { stdout, stderr } = await h.logs();
    throw new Error(`${err.message}\n--- edge logs ---\n${stdout}\n${stderr}`);
  });
  return h;
}

export interface EdgeRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs the edge image to completion (for --once and --dry --once). */
export async function runEdge(scope: Scope, opts: EdgeOptions, timeoutMs = 60_000): Promise<EdgeRun> {
  await requireDocker();
  const name = opts.name ?? uniqueName("dockside-edge-run");
  const container = await docker.createContainer(createOptions(opts, name));
  scope.defer(`edge run ${name}`, () => removeContainer(container.id));
  await container.start();
  let timer: NodeJS.Timeout | undefined;
  const result = (await Promise.race([
    container.wait(),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`edge run did not exit within ${timeoutMs} ms`)), timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer))) as { StatusCode: number };
  const { stdout, stderr } = await containerLogs(container);
  await removeContainer(container.id);
  return { exitCode: result.StatusCode, stdout, stderr };
}
