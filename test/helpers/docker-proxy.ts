// A unix-socket proxy in front of the Docker engine, for tests that need the engine to go
// away and come back: stop() closes the socket and cuts every open connection (event
// streams included), start() listens again on the same path, refuse() listens but hangs up
// on every connection at once (an engine that accepts and dies), counting them. It records the request line
// of every HTTP request it forwards, so a test can see what a client asked for (`since`).

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
  /** Forwards to the engine (listening if it was not). */
  start(): Promise<void>;
  /** Accepts connections and closes them at once (listening if it was not). */
  refuse(): Promise<void>;
  /** Stops listening and cuts every connection; clients see ECONNREFUSED / ENOENT until start(). */
  stop(): Promise<void>;
}

const requestLine = /(?:^|\r\n)((?:GET|POST|PUT|DELETE|HEAD) \S+) HTTP\/1\.[01]\r\n/g;

export function dockerProxy(scope: Scope, target = "/var/run/docker.sock"): DockerProxy {
  const dir = mkdtempSync(path.join(os.tmpdir(), "dockside-docker-proxy-"));
  const socketPath = path.join(dir, "docker.sock");
  const open = new Set<net.Socket>();
  const requests: string[] = [];
  let server: net.Server | undefined;
  let refusing = false;
  let refused = 0;

  const onClient = (client: net.Socket) => {
    if (refusing) {
      refused++;
      client.destroy();
      return;
    }
    const engine = net.connect(target);
    open.add(client).add(engine);
    client.on("data", (chunk: Buffer) => {
      for (const m of chunk.toString("latin1").matchAll(requestLine)) requests.push(m[1]!);
    });
    client.pipe(engine).pipe(client);
    const cut = () => {
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
  };
  scope.defer("docker proxy", async () => {
    await proxy.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return proxy;
}
