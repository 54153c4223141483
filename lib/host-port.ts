/** `address:port` as URLs, Consul checks and nginx's `server` directive want it (IPv6 in brackets). */
export function hostPort(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}
