// Which of Node's built-in modules a service in a container has loaded, read from inside it:
// a probe file, mounted into the container and loaded through NODE_OPTIONS into the image's own
// command, prints them (process.moduleLoadList) as one line on stderr.

import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Scope } from "./scope.ts";

const marker = "DOCKSIDE-LOADED ";

/**
 * When the probe prints: `listening`, once the process's first server listens (the built-ins
 * loaded after the probe itself, i.e. by the service's start), then it ends the process; or
 * after `afterMs`, every built-in loaded by then, and the process runs on.
 */
export type ProbeMoment = { listening: true } | { afterMs: number };

function probeSource(moment: ProbeMoment): string {
  const print = (list: string) =>
    `process.stderr.write(${JSON.stringify(marker)} + JSON.stringify({ modules: ${list}, atMs: performance.now(), bootstrapMs: performance.nodeTiming.bootstrapComplete }) + "\\n")`;
  if ("afterMs" in moment) {
    return `setTimeout(() => ${print("process.moduleLoadList")}, ${moment.afterMs}).unref();\n`;
  }
  return `const net = require("node:net");
const before = new Set(process.moduleLoadList);
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  this.once("listening", () => setImmediate(() => {
    ${print("process.moduleLoadList.filter((m) => !before.has(m))")};
    process.exit(0);
  }));
  return listen.apply(this, args);
};
`;
}

/** What the probe printed. */
export interface ProbeReading {
  /** "NativeModule http", ...: every built-in loaded, or (listening) those loaded after the probe. */
  modules: string[];
  /** When it printed, in ms since the process started (performance.now()). */
  atMs: number;
  /** When Node's own bootstrap completed, in ms since the process started. */
  bootstrapMs: number;
}

export interface LoadedModulesProbe {
  /** host:container bind mount of the probe's directory (read-only). */
  bind: string;
  /** The NODE_OPTIONS value that loads it. */
  nodeOptions: string;
  /** The probe's line in a container's stderr; undefined: not printed yet. */
  read(stderr: string): ProbeReading | undefined;
}

export function loadedModulesProbe(scope: Scope, moment: ProbeMoment): LoadedModulesProbe {
  const dir = mkdtempSync(path.join(os.tmpdir(), "dockside-probe-"));
  scope.defer(`directory ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, "probe.cjs"), probeSource(moment));
  // The containers run as users of their own: the probe must be readable by anyone.
  chmodSync(dir, 0o755);
  chmodSync(path.join(dir, "probe.cjs"), 0o644);
  return {
    bind: `${dir}:/dockside-probe:ro`,
    nodeOptions: "--require=/dockside-probe/probe.cjs",
    read(stderr) {
      const line = stderr.split("\n").find((l) => l.startsWith(marker));
      return line === undefined ? undefined : (JSON.parse(line.slice(marker.length)) as ProbeReading);
    },
  };
}

/** Fails naming each module of `reasons` (module → why it must not be there) that `loaded` holds. */
export function assertNotLoaded(loaded: readonly string[], reasons: Readonly<Record<string, string>>): void {
  assert.deepEqual(
    Object.entries(reasons)
      .filter(([m]) => loaded.includes(m))
      .map(([m, why]) => `${m}: ${why}`),
    [],
    `loaded: ${loaded.join(", ")}`,
  );
}
