// A unix-socket proxy in front of the Docker engine that can stall the event streams
// open through it: the connection stays open, the engine keeps answering every other
// request, but nothing more of the stream is forwarded (the fault the registrator's
// event-stream watchdog is for).

import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import type { Scope } from "./scope.ts";

export interface DockerSocketProxy {
  socketPath: string;
  /** Stops forwarding every event stream open now (new ones work). */
  stallEventStreams(): number;
  /** Event streams opened through the proxy so far. */
  readonly eventStreams: number;
}

export async function startDockerSocketProxy(
  scope: Scope,
  upstream = "/var/run/docker.sock",
): Promise<DockerSocketProxy> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "dockside-sock-"));
  const socketPath = path.join(dir, "docker.sock");
  const streams = new Set<{ stalled: boolean }>();
  let opened = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const up = net.connect(upstream);
    sockets.add(client).add(up);
    const state = { stalled: false };
    client.on("data", (chunk) => {
      // Each request on the connection (it may be kept alive) starts with its request line.
      const line = chunk.toString("latin1", 0, Math.min(chunk.length, 2048)).split("\r\n")[0] ?? "";
      // A following stream: GET /events without an until (a closed window has one).
      if (/^GET \S*\/events\b/.test(line) && !/[?&]until=/.test(line) && !streams.has(state)) {
        streams.add(state);
        opened++;
      }
      up.write(chunk);
    });
    up.on("data", (chunk) => {
      if (!state.stalled) client.write(chunk);
    });
    const close = () => {
      streams.delete(state);
      client.destroy();
      up.destroy();
      sockets.delete(client);
      sockets.delete(up);
    };
    client.on("close", close).on("error", close);
    up.on("close", close).on("error", close);
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  scope.defer("docker socket proxy", async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    socketPath,
    stallEventStreams: () => {
      for (const s of streams) s.stalled = true;
      return streams.size;
    },
    get eventStreams() {
      return opened;
    },
  };
}
