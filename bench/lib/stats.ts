// Summary statistics for benchmark samples (nearest-rank percentiles).
//
// With n samples, nearest rank can only tell percentiles apart down to 1/n: below
// 100 samples p99 is simply the maximum, so it is reported only when n >= 100.

/** The sample count from which p99 is more than another name for the maximum. */
export const P99_MIN_SAMPLES = 100;

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
  /** Present only when n >= P99_MIN_SAMPLES. */
  p99?: number;
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
    ...(s.length >= P99_MIN_SAMPLES ? { p99: percentile(s, 99) } : {}),
    max: s[s.length - 1] ?? NaN,
    mean,
  };
}

/** "n=… p50 … p90 … [p99 …] max …", each value through `fmt`. */
export function percentileText(s: Summary, fmt: (v: number) => string): string {
  const p99 = s.p99 === undefined ? "" : ` p99 ${fmt(s.p99)}`;
  return `n=${s.n} p50 ${fmt(s.p50)} p90 ${fmt(s.p90)}${p99} max ${fmt(s.max)}`;
}

export function formatSummary(label: string, s: Summary, unit = "ms"): string {
  const f = (v: number) => (Number.isNaN(v) ? "-" : `${v.toFixed(1)}${unit}`);
  return `${label}: ${percentileText(s, f).replace(/^n=\d+/, (n) => `${n} min ${f(s.min)}`)}`;
}

export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
