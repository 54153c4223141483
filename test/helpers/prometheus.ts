// Reading Prometheus text exposition in tests: one sample by name and labels.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of one exposition, and the type of every metric family it declares (`# TYPE`). */
export type Samples = Sample[] & { readonly types: ReadonlyMap<string, string> };

export function parseMetrics(text: string): Samples {
  const out: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    const t = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\S+)/.exec(line);
    if (t) types.set(t[1]!, t[2]!);
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return Object.assign(out, { types });
}

/**
 * The sample with this name whose labels include `labels`. A declared counter whose labelled
 * child has not been touched yet reads 0; any other missing sample throws, so a renamed or
 * removed metric fails the test instead of reading as an unchanged 0.
 */
export function sampleValue(samples: Samples, name: string, labels: Record<string, string> = {}): number {
  const s = samples.find(
    (x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v),
  );
  if (s) return s.value;
  const type = samples.types.get(name);
  if (type === "counter" && Object.keys(labels).length > 0) return 0;
  const declared = type ? `declared as ${type} but has no sample` : "is not exposed";
  throw new Error(`metric ${name}${JSON.stringify(labels)} ${declared}`);
}
