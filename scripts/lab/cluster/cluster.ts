// The cluster lab on one machine: Consul servers, Docker hosts (Docker-in-Docker), an edge.
// Drives the docker CLI; the plan (names, addresses, configurations) comes from plan.ts.

import { randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { images as imageSet } from "../../../test/helpers/images.ts";
import { waitFor } from "../../../test/helpers/wait.ts";
import { serviceTag } from "../../lib/base-images.ts";
import { docker, runLogged } from "../../lib/docker-cli.ts";
import { repoRoot } from "../compose.ts";
import { waitForInstances } from "../wait.ts";
import { consulApi, grant, type ConsulApi } from "./consul-api.ts";
import { ImageCopier } from "./image-copy.ts";
import {
  agentConfig,
  clusterPlan,
  labGrants,
  publishedPort,
  spreadInstances,
  type ClusterOptions,
  type ClusterPlan,
  type Member,
  type Placed,
  type PolicySpec,
} from "./plan.ts";
import { ensureSecrets, removeSecrets, saveSecrets, type SecretFiles } from "./secrets.ts";

/** The docker CLI wrapper, for the tests that drive this lab (it lives in scripts/lib/docker-cli.ts). */
export { docker };

export const hostImage = `dockside/cluster-host:${serviceTag}`;

/** Label on the demo instances inside the hosts: the registrators only look at these. */
const workloadLabel = "dockside.workload";
/** Where a host sees the client TLS files and its agent's configuration. */
const hostTls = "/etc/dockside/tls";
const hostAgentConfig = "/etc/dockside/agent";

/**
 * A host's client agent starts without the check states it persisted: after a crash they say
 * "passing" about instances nobody has looked at since, and the agent would vouch for them the
 * moment it rejoins, before they listen again. Without them the registrator's TTL checks start
 * critical, and turn passing when the registrator finds each instance ready again.
 */
const clientAgentStart = "rm -rf /consul/data/checks/state && exec consul agent -config-dir /consul/config";

export interface InnerContainer {
  host: string;
  id: string;
  name: string;
  service: string;
  state: string;
  status: string;
  port: number | undefined;
}

export interface ClusterLabOptions extends ClusterOptions {
  /** Print each step (the lab command); tests keep quiet. */
  verbose?: boolean;
  /** Extra environment for every registrator (tests use it for a faster resync). */
  registratorEnv?: Record<string, string>;
  /** Extra environment for the edge's templater. */
  templaterEnv?: Record<string, string>;
}

/** Polls `fn` every 250 ms until it returns a value (test/helpers/wait.ts's waitFor). */
const until = <T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined | false>): Promise<T> =>
  waitFor(fn, { what, timeoutMs, intervalMs: 250 });

export class ClusterLab {
  readonly plan: ClusterPlan;
  readonly #opts: ClusterLabOptions;
  #files: SecretFiles | undefined;
  #api: ConsulApi | undefined;
  readonly #images = new ImageCopier((msg) => this.#log(msg));

  constructor(opts: ClusterLabOptions = {}) {
    this.plan = clusterPlan(opts);
    this.#opts = opts;
  }

  #log(msg: string): void {
    if (this.#opts.verbose) console.log(`cluster: ${msg}`);
  }

  get images() {
    return { ...imageSet(), host: hostImage };
  }

  async files(): Promise<SecretFiles> {
    this.#files ??= await ensureSecrets(this.plan, this.images.consul);
    return this.#files;
  }

  async api(): Promise<ConsulApi> {
    const f = await this.files();
    this.#api ??= consulApi(this.plan, readFileSync(path.join(f.serverTls, "ca.pem")));
    return this.#api;
  }

  /** The management token: for the lab command and tests only, never given to a service. */
  async managementToken(): Promise<string> {
    return (await this.files()).secrets.managementToken;
  }

  /** The group of a host's Docker socket: the registrator image runs as `node` and joins it. */
  async socketGroup(host: string): Promise<string> {
    const r = await docker(["exec", this.#host(host).container, "stat", "-c", "%g", "/var/run/docker.sock"]);
    return r.stdout.trim();
  }

  hostDocker(
    host: string,
    args: string[],
    opts: { input?: string; timeoutMs?: number; reject?: boolean } = {},
  ) {
    return docker(
      ["exec", ...(opts.input !== undefined ? ["-i"] : []), this.#host(host).container, "docker", ...args],
      opts,
    );
  }

  #host(node: string) {
    const h = this.plan.hosts.find((x) => x.node === node || x.container === node);
    if (!h)
      throw new Error(
        `no host "${node}" in this lab (hosts: ${this.plan.hosts.map((x) => x.node).join(", ")})`,
      );
    return h;
  }

  /** A member's own place on the lab network: host name, network, fixed IP, labels. */
  #memberArgs(m: Member, role: string): string[] {
    return ["--hostname", m.node, "--network", this.plan.network, "--ip", m.ip, ...this.#labels(role)];
  }

  /** A Consul agent as an outer container (a server, or the edge's client agent). */
  async #runAgent(
    m: Member,
    role: "server" | "edge-agent",
    tls: string,
    extra: string[] = [],
  ): Promise<void> {
    const dir = await this.#writeAgentConfig(m, role === "server" ? "server" : "client");
    await this.#runOnce(m.container, [
      ...this.#memberArgs(m, role),
      ...extra,
      "-v",
      `${dir}:/consul/config:ro`,
      "-v",
      `${tls}:/consul/tls:ro`,
      this.images.consul,
      "agent",
      "-config-dir",
      "/consul/config",
    ]);
  }

  #labels(role: string): string[] {
    return [
      "--label",
      `${this.plan.label}=${this.plan.prefix}`,
      "--label",
      `${this.plan.label}.role=${role}`,
      // Tests' and benchmarks' clusters are swept after a killed run (scripts/sweep.sh); the lab is not.
      ...(this.plan.prefix === clusterPlan().prefix ? [] : ["--label", "dockside.test=1"]),
    ];
  }

  async buildHostImage(): Promise<void> {
    const started = Date.now();
    await runLogged(
      [
        "build",
        "-f",
        path.join(repoRoot, "deploy/cluster/host.Dockerfile"),
        "-t",
        hostImage,
        path.join(repoRoot, "deploy/cluster"),
      ],
      path.join(repoRoot, ".cache", "images", "cluster-host.log"),
      { timeoutMs: 10 * 60_000 },
    );
    this.#log(`${hostImage} built (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  }

  #configDir(m: Member): string {
    return path.join(this.#files!.dir, "config", m.node);
  }

  async #writeAgentConfig(m: Member, role: "server" | "client"): Promise<string> {
    const f = await this.files();
    const dir = this.#configDir(m);
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const cfg = agentConfig(this.plan, m, role, {
      gossipKey: f.secrets.gossipKey,
      agentToken: f.secrets.tokens[`agent-${m.node}`]!,
      managementToken: role === "server" ? f.secrets.managementToken : undefined,
    });
    writeFileSync(path.join(dir, "agent.hcl"), cfg, { mode: 0o644 });
    return dir;
  }

  async up(counts: Record<string, number> = { web: 3, api: 2 }): Promise<void> {
    const started = Date.now();
    await this.buildHostImage();
    const f = await this.files();
    const p = this.plan;
    if ((await docker(["network", "inspect", p.network], { reject: false })).exitCode !== 0) {
      await docker([
        "network",
        "create",
        "--subnet",
        `${p.subnet}.0/24`,
        ...this.#labels("network"),
        p.network,
      ]);
    }
    for (const s of p.servers) await this.#runAgent(s, "server", f.serverTls);
    this.#log(`${p.servers.length} Consul servers started; waiting for a leader`);
    await this.waitLeader();
    await this.#createAcl();
    this.#log(
      `leader elected, ACL policies and tokens created (${((Date.now() - started) / 1000).toFixed(1)} s)`,
    );
    await Promise.all(p.hosts.map((h) => this.#startHost(h)));
    await this.#startEdge();
    for (const [service, n] of Object.entries(counts)) await this.scale(service, n);
    this.#log(`up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }

  async #runOnce(name: string, args: string[]): Promise<void> {
    const exists = await docker(["inspect", "-f", "{{.State.Running}}", name], { reject: false });
    if (exists.exitCode === 0) {
      if (exists.stdout.trim() !== "true") await docker(["start", name]);
      return;
    }
    await docker(["run", "-d", "--name", name, ...args]);
  }

  async waitLeader(timeoutMs = 60_000): Promise<string> {
    const api = await this.api();
    return until("Consul leader", timeoutMs, async () => {
      const leader = await api.request<string>("GET", "/v1/status/leader");
      return leader ? leader : undefined;
    });
  }

  /** The server container that leads now. */
  async leader(): Promise<Member> {
    const addr = await this.waitLeader();
    const ip = addr.split(":")[0];
    const m = this.plan.servers.find((s) => s.ip === ip);
    if (!m) throw new Error(`leader ${addr} is not one of this lab's servers`);
    return m;
  }

  async #createAcl(): Promise<void> {
    const f = await this.files();
    const api = await this.api();
    const token = f.secrets.managementToken;
    // The management token is usable once the leader has written it; wait for that.
    await until("ACL bootstrap token", 30_000, async () => {
      await api.request("GET", "/v1/acl/policies", { token });
      return true;
    });
    for (const g of labGrants(this.plan)) await grant(api, token, g.policy, f.secrets.tokens[g.token]!);
  }

  /** A policy and a token for it, kept with the lab's secrets under `name`; returns the secret. */
  async grantToken(policy: PolicySpec, name: string): Promise<string> {
    const f = await this.files();
    const secret = f.secrets.tokens[name] ?? randomUUID();
    await grant(await this.api(), f.secrets.managementToken, policy, secret);
    f.secrets.tokens[name] = secret;
    saveSecrets(this.plan, f.secrets);
    return secret;
  }

  async #startHost(h: ClusterPlan["hosts"][number]): Promise<void> {
    const f = await this.files();
    const dir = await this.#writeAgentConfig(h, "client");
    await this.#runOnce(h.container, [
      ...this.#memberArgs(h, "host"),
      "--cap-add",
      "ALL",
      "--cap-drop",
      "SYS_RESOURCE",
      "--security-opt",
      "seccomp=unconfined",
      "--security-opt",
      "apparmor=unconfined",
      // Its containers' cgroups, under the machine's hierarchy root: one parent per host, named
      // after it, so what a host uses can be read (and told apart from another lab's).
      "-e",
      `DOCKSIDE_CGROUP_PARENT=/${h.container}`,
      "-v",
      `${h.volume}:/var/lib/docker`,
      "-v",
      `${f.clientTls}:${hostTls}:ro`,
      "-v",
      `${dir}:${hostAgentConfig}:ro`,
      this.images.host,
    ]);
    await this.#waitEngine(h.node);
    await this.loadImages(h.node, [this.images.consul, this.images.registrator, this.images.demo]);
    await this.startAgent(h.node);
    await this.startRegistrator(h.node);
    this.#log(`${h.node} (${h.ip}): dockerd, Consul client agent and registrator running`);
  }

  /** Copies images into a host's engine (`docker save | docker load`), skipping those it has. */
  async loadImages(host: string, names: string[]): Promise<void> {
    await this.#images.copy(this.#host(host), names);
  }

  /** (Re)creates a host's Consul client agent; `fresh` drops its data (an agent restarted empty). */
  async startAgent(host: string, opts: { fresh?: boolean } = {}): Promise<void> {
    if (opts.fresh) await this.hostDocker(host, ["rm", "-f", "consul-agent"], { reject: false });
    const exists = await this.hostDocker(host, ["inspect", "consul-agent"], { reject: false });
    if (exists.exitCode === 0) {
      await this.hostDocker(host, ["start", "consul-agent"]);
      return;
    }
    await this.hostDocker(host, [
      "run",
      "-d",
      "--name",
      "consul-agent",
      "--network",
      "host",
      "--restart",
      "unless-stopped",
      "--label",
      "SERVICE_IGNORE=true",
      "-v",
      `${hostAgentConfig}:/consul/config:ro`,
      "-v",
      `${hostTls}:/consul/tls:ro`,
      "--entrypoint",
      "sh",
      this.images.consul,
      "-c",
      clientAgentStart,
    ]);
  }

  /** (Re)creates a host's registrator, with its own token unless `token` says otherwise. */
  async startRegistrator(
    host: string,
    opts: { token?: string; env?: Record<string, string>; mounts?: string[] } = {},
  ): Promise<void> {
    const h = this.#host(host);
    const f = await this.files();
    const token = opts.token ?? f.secrets.tokens[`registrator-${h.node}`]!;
    await this.hostDocker(host, ["rm", "-f", "registrator"], { reject: false });
    const env = {
      CONSUL_HTTP_ADDR: "https://127.0.0.1:8501",
      CONSUL_CACERT: `${hostTls}/ca.pem`,
      CONSUL_HTTP_TOKEN: token,
      REGISTRATOR_ADDRESS_MODE: "published",
      REGISTRATOR_HOST_IP: h.ip,
      REGISTRATOR_IDENTITY: h.node,
      REGISTRATOR_LABEL_FILTER: workloadLabel,
      ...this.#opts.registratorEnv,
      ...opts.env,
    };
    await this.hostDocker(host, [
      "run",
      "-d",
      "--name",
      "registrator",
      "--network",
      "host",
      "--restart",
      "unless-stopped",
      "--label",
      "SERVICE_IGNORE=true",
      // The image runs as `node`: reading the socket takes its group (no root, no capability).
      "--group-add",
      await this.socketGroup(host),
      "--cap-drop",
      "ALL",
      "--read-only",
      "--security-opt",
      "no-new-privileges",
      "-v",
      "/var/run/docker.sock:/var/run/docker.sock:ro",
      "-v",
      `${hostTls}:${hostTls}:ro`,
      ...(opts.mounts ?? []).flatMap((m) => ["-v", m]),
      ...Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]),
      this.images.registrator,
    ]);
  }

  async #startEdge(): Promise<void> {
    const f = await this.files();
    // The edge's agent owns the network namespace (its IP, the published port); the templater and
    // nginx join it, so they reach the agent's HTTPS API on loopback.
    await this.#runAgent(this.plan.edgeAgent, "edge-agent", f.clientTls, ["-p", "127.0.0.1::8080"]);
    await this.startTemplater();
  }

  /** (Re)creates the edge (templater + nginx), with the templater token unless told otherwise. */
  async startTemplater(opts: { token?: string } = {}): Promise<void> {
    const f = await this.files();
    await docker(["rm", "-f", this.plan.edge], { reject: false });
    const env = {
      CONSUL_HTTP_ADDR: "https://127.0.0.1:8501",
      CONSUL_CACERT: "/tls/ca.pem",
      CONSUL_HTTP_TOKEN: opts.token ?? f.secrets.tokens.templater!,
      ...this.#opts.templaterEnv,
    };
    await docker([
      "run",
      "-d",
      "--name",
      this.plan.edge,
      "--network",
      `container:${this.plan.edgeAgent.container}`,
      ...this.#labels("edge"),
      "-v",
      `${f.clientTls}:/tls:ro`,
      ...Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]),
      this.images.edge,
    ]);
  }

  /** The edge as the machine reaches it: on the cluster network, port 8080. */
  edgeUrl(): string {
    return `http://${this.plan.edgeAgent.ip}:8080`;
  }

  /** The edge's ops listener (status page, /status, /metrics, /health), on the cluster network. */
  opsUrl(): string {
    return `http://${this.plan.edgeAgent.ip}:9102`;
  }

  /** The edge's port published on loopback, for people. */
  async publishedEdgeUrl(): Promise<string> {
    const out = (await docker(["port", this.plan.edgeAgent.container, "8080"])).stdout.split("\n")[0]!.trim();
    return `http://${out.replace("127.0.0.1", "localhost")}`;
  }

  /** Demo instances on every host (hosts that do not answer are skipped). */
  async instances(service?: string): Promise<InnerContainer[]> {
    const all = await Promise.all(this.plan.hosts.map((h) => this.hostInstances(h.node).catch(() => [])));
    return all.flat().filter((c) => !service || c.service === service);
  }

  async hostInstances(host: string): Promise<InnerContainer[]> {
    const r = await this.hostDocker(
      host,
      [
        "ps",
        "-a",
        "--filter",
        `label=${workloadLabel}`,
        "--format",
        `{{.ID}}\t{{.Names}}\t{{.Label "SERVICE_NAME"}}\t{{.State}}\t{{.Status}}\t{{.Ports}}`,
      ],
      { timeoutMs: 10_000 },
    );
    return r.stdout
      .split("\n")
      .filter(Boolean)
      .map((line) => {
        const [id, name, service, state, status, ports] = line.split("\t") as [
          string,
          string,
          string,
          string,
          string,
          string,
        ];
        const port = /:(\d+)->3000\/tcp/.exec(ports)?.[1];
        return { host, id, name, service, state, status, port: port ? Number(port) : undefined };
      });
  }

  /** Starts and stops instances of `service` so that `n` run, spread over the hosts. */
  async scale(
    service: string,
    n: number,
    hosts = this.plan.hosts.map((h) => h.node),
  ): Promise<{ start: Placed[]; stop: Placed[] }> {
    if (!/^[a-z][a-z0-9-]*$/.test(service)) throw new Error(`"${service}" is not a service name`);
    const running = (await this.instances(service)).map((c) => ({ host: c.host, name: c.name }));
    const change = spreadInstances(service, n, hosts, running);
    await Promise.all([
      ...change.stop.map((c) =>
        this.hostDocker(c.host, ["rm", "-f", "-t", "10", c.name]).catch(() =>
          this.hostDocker(c.host, ["rm", "-f", c.name]),
        ),
      ),
      ...change.start.map((c) => this.startInstance(c, service)),
    ]);
    this.#log(`${service}=${n}: started ${change.start.length}, removed ${change.stop.length}`);
    return change;
  }

  async startInstance(at: Placed, service: string): Promise<void> {
    await this.hostDocker(at.host, [
      "run",
      "-d",
      "--name",
      at.name,
      "--restart",
      "unless-stopped",
      "--stop-timeout",
      "15",
      "--label",
      `${workloadLabel}=1`,
      "--label",
      `SERVICE_NAME=${service}`,
      "--label",
      "SERVICE_TAGS=http",
      "--label",
      "SERVICE_READY_HTTP=/readyz",
      "-e",
      `DEMO_NAME=${service}`,
      // Serving 4 s after SIGTERM covers nginx's old workers, which keep the old upstream list
      // for up to keepalive_min_timeout (3 s) after a reload (ENVIRONMENT.md).
      "-e",
      "DEMO_DRAIN_DELAY=4s",
      "-p",
      `${publishedPort(at.name)}:3000`,
      // The image's health check (2 s timeout, no retry) turns instances critical whenever a probe
      // process is slow to start, which on a busy machine is often; readiness for routing comes
      // from SERVICE_READY_HTTP anyway.
      "--health-interval",
      "5s",
      "--health-timeout",
      "10s",
      "--health-retries",
      "3",
      this.images.demo,
    ]);
  }

  /** Waits until the edge routes each service (path route) to exactly its running instances. */
  async waitRouted(services = ["web", "api"], timeoutMs = 120_000): Promise<void> {
    for (const service of services) {
      const started = Date.now();
      const check = await waitForInstances(
        `${this.edgeUrl()}/${service}/`,
        async () => (await this.instances(service)).filter((c) => c.state === "running").map((c) => c.id),
        { timeoutMs },
      );
      this.#log(`${service} answers from all ${check.seen.size} instance(s) (${Date.now() - started} ms)`);
    }
  }

  /** SIGKILL of the container that is the host: its engine, agent, registrator and instances die. */
  async killHost(host: string): Promise<void> {
    await docker(["kill", this.#host(host).container]);
  }

  /** Starts a killed host again; its engine brings its containers back (restart policies). */
  async startHost(host: string): Promise<void> {
    const h = this.#host(host);
    await docker(["start", h.container]);
    await this.#waitEngine(h.node);
  }

  /** Until a host's inner dockerd answers. */
  async #waitEngine(node: string): Promise<void> {
    await until(
      `${node}: inner dockerd`,
      60_000,
      async () =>
        (await this.hostDocker(node, ["info", "--format", "{{.ServerVersion}}"], { reject: false }))
          .exitCode === 0,
    );
  }

  /** Everything this lab started: containers (outer; inner ones go with their hosts), volumes, network, secrets. */
  async down(): Promise<void> {
    const p = this.plan;
    const ids = (await docker(["ps", "-aq", "--filter", `label=${p.label}=${p.prefix}`])).stdout
      .split("\n")
      .filter(Boolean);
    // The edge first: it shares the edge agent's network namespace.
    const edge = (await docker(["ps", "-aq", "--filter", `name=^${p.edge}$`])).stdout.trim();
    if (edge) await docker(["rm", "-f", "-v", edge], { reject: false });
    if (ids.length) await docker(["rm", "-f", "-v", ...ids], { reject: false, timeoutMs: 300_000 });
    for (const h of p.hosts) await docker(["volume", "rm", "-f", h.volume], { reject: false });
    await docker(["network", "rm", p.network], { reject: false });
    removeSecrets(p);
    this.#log(`down: ${ids.length} containers, ${p.hosts.length} volumes and the network removed`);
  }
}
