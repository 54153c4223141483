// Summary statistics for benchmark samples.

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))]!;
}

export interface Summary {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function summarise(samples: readonly number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / (s.length || 1);
  return {
    n: s.length,
    min: s[0] ?? NaN,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    max: s[s.length - 1] ?? NaN,
    mean,
  };
}

export function formatSummary(label: string, s: Summary, unit = "ms"): string {
  const f = (v: number) => (Number.isNaN(v) ? "-" : v.toFixed(1));
  return `${label}: n=${s.n} min=${f(s.min)}${unit} p50=${f(s.p50)}${unit} p90=${f(s.p90)}${unit} p99=${f(s.p99)}${unit} max=${f(s.max)}${unit}`;
}

export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
