// A unix-socket proxy in front of the Docker engine, for tests that need the engine to go
// away, come back, or stall: stop() closes the socket and cuts every open connection (event
// streams included), start() listens again on the same path, refuse() listens but hangs up
// on every connection at once (an engine that accepts and dies), counting them, and
// stallEventStreams() stops forwarding the event streams open now while the engine keeps
// answering every other request (the fault the registrator's event-stream watchdog is for).
// It records the request line of every HTTP request it forwards, so a test can see what a
// client asked for (`since`).

import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import type { Scope } from "./scope.ts";

export interface DockerProxy {
  /** The proxy's socket: give it to dockerode as `socketPath`. */
  socketPath: string;
  /** "GET /v1.47/events?since=…" for each request forwarded, in order. */
  readonly requests: readonly string[];
  /** Connections hung up on while refusing: each is one failed attempt of the client. */
  readonly refused: number;
  /** Following event streams (GET /events without `until`) opened through the proxy so far. */
  readonly eventStreams: number;
  /** Forwards to the engine (listening if it was not). */
  start(): Promise<void>;
  /** Accepts connections and closes them at once (listening if it was not). */
  refuse(): Promise<void>;
  /** Stops listening and cuts every connection; clients see ECONNREFUSED / ENOENT until start(). */
  stop(): Promise<void>;
  /** Stops forwarding every event stream open now (new ones work); returns how many. */
  stallEventStreams(): number;
}

const requestLine = /(?:^|\r\n)((?:GET|POST|PUT|DELETE|HEAD) \S+) HTTP\/1\.[01]\r\n/g;
/** A following stream: GET /events without an until (a closed window has one). */
const followingStream = (line: string) => /^GET \S*\/events\b/.test(line) && !/[?&]until=/.test(line);

export function dockerProxy(scope: Scope, target = "/var/run/docker.sock"): DockerProxy {
  const dir = mkdtempSync(path.join(os.tmpdir(), "dockside-docker-proxy-"));
  const socketPath = path.join(dir, "docker.sock");
  const open = new Set<net.Socket>();
  const requests: string[] = [];
  /** The connections carrying a following event stream, open now. */
  const streams = new Set<{ stalled: boolean }>();
  let server: net.Server | undefined;
  let refusing = false;
  let refused = 0;
  let eventStreams = 0;

  const onClient = (client: net.Socket) => {
    if (refusing) {
      refused++;
      client.destroy();
      return;
    }
    const engine = net.connect(target);
    open.add(client).add(engine);
    const conn = { stalled: false };
    client.on("data", (chunk: Buffer) => {
      for (const m of chunk.toString("latin1").matchAll(requestLine)) {
        requests.push(m[1]!);
        if (followingStream(m[1]!) && !streams.has(conn)) {
          streams.add(conn);
          eventStreams++;
        }
      }
    });
    client.pipe(engine);
    engine.on("data", (chunk: Buffer) => {
      if (!conn.stalled) client.write(chunk);
    });
    const cut = () => {
      streams.delete(conn);
      client.destroy();
      engine.destroy();
      open.delete(client);
      open.delete(engine);
    };
    for (const s of [client, engine]) s.on("error", cut).on("close", cut);
  };

  const listen = async () => {
    if (server) return;
    const s = net.createServer(onClient);
    await new Promise<void>((resolve, reject) => s.once("error", reject).listen(socketPath, resolve));
    server = s;
  };

  const proxy: DockerProxy = {
    socketPath,
    requests,
    get refused() {
      return refused;
    },
    get eventStreams() {
      return eventStreams;
    },
    async start() {
      refusing = false;
      await listen();
    },
    async refuse() {
      refusing = true;
      await listen();
    },
    async stop() {
      const s = server;
      server = undefined;
      if (!s) return;
      const closed = new Promise<void>((resolve) => s.close(() => resolve()));
      for (const sock of open) sock.destroy();
      open.clear();
      await closed;
      rmSync(socketPath, { force: true });
    },
    stallEventStreams() {
      for (const s of streams) s.stalled = true;
      return streams.size;
    },
  };
  scope.defer("docker proxy", async () => {
    await proxy.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return proxy;
}
