// Counting TCP connections from /proc/net/tcp text (e.g. read inside a container, whose
// network namespace holds only its own connections).

interface TcpEntry {
  remotePort: number;
  state: string;
  inode: string;
}

/** Parses /proc/net/tcp{,6} text. */
export function parseProcNetTcp(text: string): TcpEntry[] {
  return text
    .split("\n")
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length > 9)
    .map((f) => ({ remotePort: parseInt(f[2]!.split(":")[1]!, 16), state: f[3]!, inode: f[9]! }));
}

const ESTABLISHED = "01";

/** Established connections to `port` in a /proc/net/tcp text (e.g. read inside a container). */
export function establishedIn(text: string, port: number): number {
  return parseProcNetTcp(text).filter((e) => e.remotePort === port && e.state === ESTABLISHED).length;
}
