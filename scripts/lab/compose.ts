// The lab as a compose project: a typed handle over `docker compose` for the lab
// command and the end-to-end tests (which run their own projects on free ports).

import path from "node:path";
import Docker from "dockerode";
import { execa, type Options } from "execa";
import { sleep } from "../../lib/backoff.ts";
import { docker } from "../lib/docker-cli.ts";

export const repoRoot = path.resolve(import.meta.dirname, "..", "..");
export const composeFile = path.join(repoRoot, "deploy", "compose.yml");

export interface LabOptions {
  /** Compose project name; default "dockside" (the name in compose.yml). */
  project?: string;
  /** Extra variables for compose's interpolation (ports, images, settings). */
  env?: Record<string, string>;
  /** Stream compose's own output to the terminal. */
  verbose?: boolean;
}

export interface LabContainer {
  id: string;
  name: string;
  service: string;
  /** Container hostname: what demo-node reports as its instance. */
  hostname: string;
  state: string;
  health: string | undefined;
  ip: string | undefined;
  labels: Record<string, string>;
}

export class Lab {
  readonly project: string;
  readonly #env: Record<string, string>;
  readonly #verbose: boolean;
  readonly #docker = new Docker();

  constructor(opts: LabOptions = {}) {
    this.project = opts.project ?? process.env.COMPOSE_PROJECT_NAME ?? "dockside";
    this.#env = opts.env ?? {};
    this.#verbose = opts.verbose ?? false;
  }

  compose(args: string[], opts: Options = {}) {
    return execa("docker", ["compose", "-f", composeFile, "-p", this.project, ...args], {
      env: { ...process.env, ...this.#env },
      stdio: this.#verbose ? "inherit" : "pipe",
      ...opts,
    });
  }

  async up(scale: Record<string, number> = {}): Promise<void> {
    const scaleArgs = Object.entries(scale).flatMap(([s, n]) => ["--scale", `${s}=${n}`]);
    await this.compose(["up", "-d", "--wait", "--wait-timeout", "120", ...scaleArgs]);
  }

  /**
   * Scale services without touching the others (the same as plain `docker compose up -d --scale`).
   * Resolves with when (Date.now()) the compose process exited: the moment a user's
   * `docker compose up` returns, which benchmarks measure from.
   */
  async scale(scale: Record<string, number>): Promise<number> {
    const scaleArgs = Object.entries(scale).flatMap(([s, n]) => ["--scale", `${s}=${n}`]);
    const sub = this.compose(["up", "-d", "--no-recreate", ...scaleArgs, ...Object.keys(scale)]);
    let exitedAt = NaN;
    sub.once("exit", () => (exitedAt = Date.now()));
    await sub;
    return Number.isNaN(exitedAt) ? Date.now() : exitedAt;
  }

  async down(): Promise<void> {
    // Engine 20.10 sometimes keeps a stale endpoint of a removed container on a network for a
    // while ("has active endpoints"), and `down` then fails on that network only. Everything
    // else is gone by then: drop the stale endpoints and try again, a few times, before failing.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.compose(["down", "-v", "--remove-orphans", "-t", "5"]);
        return;
      } catch (err) {
        if (!/active endpoints/.test(String((err as { stderr?: unknown }).stderr ?? err))) throw err;
        const attached = await this.#dropStaleEndpoints();
        if (attempt < 5) {
          await sleep(1000 * attempt);
          continue;
        }
        // The same engine can also keep counting an endpoint that no container holds (the
        // network lists none, and a forced disconnect has nothing to name): only a restart of
        // dockerd clears it. With every container of the project gone, that empty network is all
        // that is left; say so in one line rather than fail the run that tore it down.
        const containers = await docker(
          ["ps", "-aq", "--filter", `label=com.docker.compose.project=${this.project}`],
          { reject: false },
        );
        if (attached > 0 || containers.stdout.trim() !== "") throw err;
        console.warn(
          `lab: project ${this.project} is down, but Docker refuses to remove its network(s) ` +
            `("has active endpoints" with no container attached, an engine bug); ` +
            `they go with a restart of dockerd`,
        );
        return;
      }
    }
  }

  /** Disconnects every container still listed on the project's networks; how many were listed. */
  async #dropStaleEndpoints(): Promise<number> {
    const lines = (r: { stdout: string }, sep: string) => r.stdout.split(sep).filter(Boolean);
    const nets = await docker(
      ["network", "ls", "-q", "--filter", `label=com.docker.compose.project=${this.project}`],
      { reject: false },
    );
    let attached = 0;
    for (const net of lines(nets, "\n")) {
      const names = await docker(
        ["network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{end}}", net],
        { reject: false },
      );
      for (const name of lines(names, " ")) {
        attached++;
        await docker(["network", "disconnect", "-f", net, name], { reject: false });
      }
    }
    return attached;
  }

  async stop(service: string): Promise<void> {
    await this.compose(["stop", service]);
  }

  async start(service: string): Promise<void> {
    await this.compose(["start", service]);
  }

  /** host:port published for a service's container port. */
  async port(service: string, containerPort: number): Promise<string> {
    const r = await this.compose(["port", service, String(containerPort)], { stdio: "pipe" });
    const m = /:(\d+)\s*$/.exec(String(r.stdout).trim().split("\n")[0] ?? "");
    if (!m) throw new Error(`${service}:${containerPort} is not published (is the lab up?)`);
    return `127.0.0.1:${m[1]}`;
  }

  async containers(service?: string): Promise<LabContainer[]> {
    const filters = [`com.docker.compose.project=${this.project}`];
    if (service) filters.push(`com.docker.compose.service=${service}`);
    const list = await this.#docker.listContainers({ all: true, filters: { label: filters } });
    const out: LabContainer[] = [];
    for (const c of list) {
      const info = await this.#docker
        .getContainer(c.Id)
        .inspect()
        .catch(() => undefined);
      if (!info) continue;
      const nets = Object.values(info.NetworkSettings.Networks ?? {});
      out.push({
        id: c.Id,
        name: (c.Names[0] ?? "").replace(/^\//, ""),
        service: c.Labels["com.docker.compose.service"] ?? "",
        hostname: info.Config.Hostname,
        state: info.State.Status,
        health: info.State.Health?.Status,
        ip: nets[0]?.IPAddress || undefined,
        labels: c.Labels,
      });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name, "en", { numeric: true }));
  }

  async running(service: string): Promise<LabContainer[]> {
    return (await this.containers(service)).filter((c) => c.state === "running");
  }
}
