// A container's JSON log lines (one object per line, with an ISO `ts`, as lib/log.ts writes
// them), read once or followed, for benchmarks that put a service's own clock next to theirs.

import { PassThrough } from "node:stream";
import type Docker from "dockerode";

export interface LogLine {
  /** `ts` as ms since the epoch. */
  at: number;
  msg: string;
  fields: Record<string, unknown>;
}

function parse(line: string): LogLine | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const o = JSON.parse(line) as Record<string, unknown>;
    const at = Date.parse(String(o.ts));
    return Number.isNaN(at) ? undefined : { at, msg: String(o.msg), fields: o };
  } catch {
    return undefined;
  }
}

/** Splits a stream of text into lines, parsed. */
function lineParser(onLine: (l: LogLine) => void): PassThrough {
  const out = new PassThrough();
  let rest = "";
  out.on("data", (chunk: Buffer) => {
    const parts = (rest + chunk.toString()).split("\n");
    rest = parts.pop() ?? "";
    for (const p of parts) {
      const l = parse(p);
      if (l) onLine(l);
    }
  });
  return out;
}

/** Every JSON line the container wrote to stdout so far. */
export async function jsonLogLines(docker: Docker, id: string): Promise<LogLine[]> {
  const raw = await docker.getContainer(id).logs({ stdout: true, stderr: false, follow: false });
  const lines: LogLine[] = [];
  const sink = lineParser((l) => lines.push(l));
  // Without a TTY, Docker frames the output (8-byte headers); demux it.
  const src = new PassThrough();
  docker.modem.demuxStream(src, sink, new PassThrough());
  await new Promise<void>((resolve) => {
    src.on("end", () => setImmediate(resolve));
    src.end(raw);
  });
  return lines;
}

/** Follows the container's stdout from now on; `lines` grows as it logs. */
export async function followJsonLogs(
  docker: Docker,
  id: string,
): Promise<{ lines: LogLine[]; stop: () => void }> {
  const lines: LogLine[] = [];
  const stream = (await docker.getContainer(id).logs({
    stdout: true,
    stderr: false,
    follow: true,
    since: Math.floor(Date.now() / 1000) - 1,
  })) as unknown as NodeJS.ReadableStream & { destroy(): void };
  docker.modem.demuxStream(
    stream,
    lineParser((l) => lines.push(l)),
    new PassThrough(),
  );
  return { lines, stop: () => stream.destroy() };
}
