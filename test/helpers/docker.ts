// The Docker engine for tests: a dockerode client that fails loudly when no engine
// answers, networks and containers labelled so a sweep can find leftovers.

import { randomBytes } from "node:crypto";
import { statSync } from "node:fs";
import Docker from "dockerode";
import type { Scope } from "./scope.ts";

export const testLabel = "dockside.test";
export const docker = new Docker();

let checked: Promise<void> | undefined;

/** Throws (never skips) when the engine is not reachable. */
export function requireDocker(): Promise<void> {
  checked ??= docker.ping().then(
    () => undefined,
    (err: Error) => {
      throw new Error(
        `these tests need a Docker engine and none answered (${err.message}); run \`npm test\`, which starts one, or start Docker`,
      );
    },
  );
  return checked;
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

export interface TestNetwork {
  name: string;
  id: string;
}

export async function createNetwork(scope: Scope, prefix = "dockside-test"): Promise<TestNetwork> {
  await requireDocker();
  const name = uniqueName(prefix);
  const net = await docker.createNetwork({ Name: name, Driver: "bridge", Labels: { [testLabel]: "1" } });
  scope.defer(`network ${name}`, () => net.remove());
  return { name, id: net.id };
}

/** Removes a container whatever its state; a container already gone is fine. */
export async function removeContainer(idOrName: string): Promise<void> {
  try {
    await docker.getContainer(idOrName).remove({ force: true, v: true });
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err;
  }
}

export async function containerIp(id: string, network: string): Promise<string> {
  const info = await docker.getContainer(id).inspect();
  const ip = info.NetworkSettings.Networks[network]?.IPAddress;
  if (!ip) throw new Error(`container ${id.slice(0, 12)} has no address on ${network}`);
  return ip;
}

/**
 * Splits a non-TTY container's log or exec output, where Docker frames each chunk with an
 * 8-byte header naming its stream; `all` keeps both streams in the order they were written.
 */
export function demux(buf: Buffer): { stdout: string; stderr: string; all: string } {
  const parts: Record<"1" | "2" | "all", Buffer[]> = { 1: [], 2: [], all: [] };
  for (let i = 0; i + 8 <= buf.length;) {
    const size = buf.readUInt32BE(i + 4);
    const chunk = buf.subarray(i + 8, i + 8 + size);
    parts[buf[i] === 2 ? 2 : 1].push(chunk);
    parts.all.push(chunk);
    i += 8 + size;
  }
  const text = (b: Buffer[]) => Buffer.concat(b).toString("utf8");
  return { stdout: text(parts[1]), stderr: text(parts[2]), all: text(parts.all) };
}

/** Everything a container (without a TTY) has logged so far. */
export async function containerLogs(
  container: Docker.Container,
): Promise<{ stdout: string; stderr: string; all: string }> {
  return demux((await container.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer);
}

/**
 * The group owning the engine's socket, for a container that reads the socket directly as a
 * non-root user (`GroupAdd`); the lab uses the allow-list proxy instead.
 */
export function dockerSocketGroup(socket = "/var/run/docker.sock"): string {
  return String(statSync(socket).gid);
}
