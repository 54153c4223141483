// The Docker side, behind a small interface: list running containers, inspect one,
// follow events. The dockerode adapter below is the only code that talks to Docker.

import { readFileSync } from "node:fs";
import path from "node:path";
import Docker from "dockerode";
import { eventFilters, type DockerEvent } from "../core/events.ts";
import type { ContainerFacts, LabelSelector } from "../core/types.ts";
import { factsFromInspect } from "./facts.ts";

export interface DockerSource {
  /** The engine's ID (the default registrator identity). */
  engineId(): Promise<string>;
  /** IDs of running containers matching the selectors (and attached to `network`, when given). */
  listRunning(filter: readonly LabelSelector[], network?: string): Promise<string[]>;
  /** Name → ID of every container matching the selectors, running or not (default IDs belong to them). */
  listNames(filter: readonly LabelSelector[]): Promise<Map<string, string>>;
  /** Facts of one container; null when it no longer exists. */
  inspect(id: string): Promise<ContainerFacts | null>;
  /**
   * Events from `since` (Docker's "seconds.nanoseconds") until the stream ends or
   * `signal` aborts; `onOpen` runs once the engine has accepted the subscription.
   */
  events(opts: EventsOptions): AsyncIterable<DockerEvent>;
  /**
   * The events of a closed window (answered at once, not a stream), for the watchdog
   * of the event stream. Optional: without it, a stalled stream is not detected.
   */
  eventsBetween?(since: string, until: string, signal: AbortSignal): Promise<DockerEvent[]>;
}

export interface EventsOptions {
  since?: string;
  signal: AbortSignal;
  onOpen?: () => void;
}

/** DOCKER_HOST (unix:///path, tcp://host:port) → dockerode options; throws naming the value. */
export function dockerOptions(
  host: string,
  env: Record<string, string | undefined> = process.env,
): Docker.DockerOptions {
  if (host.startsWith("unix://")) {
    const socketPath = host.slice("unix://".length);
    if (!socketPath.startsWith("/")) throw new Error(`"${host}": expected unix:///absolute/path`);
    return { socketPath, host: undefined, port: undefined };
  }
  if (host.startsWith("/")) return { socketPath: host, host: undefined, port: undefined };
  let u: URL;
  try {
    u = new URL(/^[a-z]+:\/\//.test(host) ? host : `tcp://${host}`);
  } catch {
    throw new Error(`"${host}" is not a Docker address; use unix:///var/run/docker.sock or tcp://host:2376`);
  }
  if (!["tcp:", "http:", "https:"].includes(u.protocol) || !u.hostname) {
    throw new Error(`"${host}": use unix:///path or tcp://host:port`);
  }
  const tls = u.protocol === "https:" || env.DOCKER_TLS_VERIFY === "1" || u.port === "2376";
  const certs = env.DOCKER_CERT_PATH;
  const read = (f: string) => (certs ? readFileSync(path.join(certs, f)) : undefined);
  return {
    host: u.hostname,
    port: u.port || (tls ? 2376 : 2375),
    protocol: tls ? "https" : "http",
    socketPath: undefined,
    ...(tls && certs ? { ca: read("ca.pem"), cert: read("cert.pem"), key: read("key.pem") } : {}),
  };
}

/** One line of the event stream; `since` is exact (timeNano does not fit a JS number). */
export function parseEvent(line: string): DockerEvent {
  const ev = JSON.parse(line) as DockerEvent;
  const nano = /"timeNano":\s*(\d{10,})/.exec(line)?.[1];
  if (nano) ev.since = `${nano.slice(0, -9)}.${nano.slice(-9)}`;
  else if (ev.time) ev.since = String(ev.time);
  return ev;
}

/** Label selectors as Docker's `label` filter takes them. */
function labelArgs(filter: readonly LabelSelector[]): string[] {
  return filter.map((s) => (s.value === undefined ? s.key : `${s.key}=${s.value}`));
}

function isNotFound(err: unknown): boolean {
  return (err as { statusCode?: number }).statusCode === 404;
}

export class DockerodeSource implements DockerSource {
  readonly docker: Docker;

  constructor(docker: Docker) {
    this.docker = docker;
  }

  static fromHost(host: string): DockerodeSource {
    return new DockerodeSource(new Docker(dockerOptions(host)));
  }

  async engineId(): Promise<string> {
    const info = (await this.docker.info()) as { ID?: string };
    if (!info.ID) throw new Error("the Docker engine reported no ID; set --identity");
    return info.ID;
  }

  async listRunning(filter: readonly LabelSelector[], network?: string): Promise<string[]> {
    const label = labelArgs(filter);
    const list = await this.docker.listContainers({
      filters: {
        status: ["running"],
        ...(label.length ? { label } : {}),
        ...(network ? { network: [network] } : {}),
      },
    });
    return list.map((c) => c.Id);
  }

  async listNames(filter: readonly LabelSelector[]): Promise<Map<string, string>> {
    const label = labelArgs(filter);
    const list = await this.docker.listContainers({
      all: true,
      ...(label.length ? { filters: { label } } : {}),
    });
    const out = new Map<string, string>();
    for (const c of list) for (const n of c.Names ?? []) out.set(n.replace(/^\//, ""), c.Id);
    return out;
  }

  async inspect(id: string): Promise<ContainerFacts | null> {
    try {
      return factsFromInspect(await this.docker.getContainer(id).inspect());
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /** The events (of the kinds the registrator follows) from `since` (and until `until`, when given). */
  async #getEvents(
    range: { since?: string; until?: string },
    signal: AbortSignal,
  ): Promise<NodeJS.ReadableStream & { destroy?: () => void }> {
    // Docker takes "seconds.nanoseconds" strings; dockerode's types say number.
    return (await this.docker.getEvents({
      ...(range.since ? { since: range.since as unknown as number } : {}),
      ...(range.until ? { until: range.until as unknown as number } : {}),
      filters: eventFilters as Docker.GetEventsOptions["filters"],
      abortSignal: signal,
    } as Docker.GetEventsOptions)) as NodeJS.ReadableStream & { destroy?: () => void };
  }

  async eventsBetween(since: string, until: string, signal: AbortSignal): Promise<DockerEvent[]> {
    const stream = await this.#getEvents({ since, until }, signal);
    let text = "";
    for await (const chunk of stream as AsyncIterable<Buffer | string>) text += chunk.toString();
    return text
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map(parseEvent);
  }

  async *events(opts: EventsOptions): AsyncIterable<DockerEvent> {
    const stream = await this.#getEvents({ since: opts.since }, opts.signal);
    const stop = () => stream.destroy?.();
    opts.signal.addEventListener("abort", stop, { once: true });
    opts.onOpen?.();
    try {
      // Not readline: its iterator does not end when the stream is destroyed.
      let buffered = "";
      for await (const chunk of stream as AsyncIterable<Buffer | string>) {
        buffered += chunk.toString();
        for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          if (line.trim() !== "") yield parseEvent(line);
        }
      }
    } catch (err) {
      if (!opts.signal.aborted) throw err;
    } finally {
      opts.signal.removeEventListener("abort", stop);
      stop();
    }
  }
}
