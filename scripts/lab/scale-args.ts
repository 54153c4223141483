// `scale web=5 api=2` arguments, shared by the single-host and the cluster lab commands.

export function parseScale(args: string[]): Record<string, number> {
  const scale: Record<string, number> = {};
  for (const a of args) {
    const m = /^([a-z0-9_-]+)=(\d+)$/.exec(a);
    if (!m) throw new Error(`"${a}" is not service=count, e.g. web=5`);
    scale[m[1]!] = Number(m[2]);
  }
  if (Object.keys(scale).length === 0) throw new Error("say what to scale, e.g. npm run lab scale web=5");
  return scale;
}
