// Latency and duration summaries: exact percentiles over every sample (runs have at most a few million).

/** { count, mean, p50, p99, p999, max } of `values` (any unit; the caller names it). */
export function summarize(values) {
  const v = Float64Array.from(values).sort();
  const at = (q) => (v.length === 0 ? NaN : v[Math.min(v.length - 1, Math.ceil(q * v.length) - 1)]);
  let sum = 0;
  for (const x of v) sum += x;
  return { count: v.length, mean: v.length === 0 ? NaN : sum / v.length, p50: at(0.5), p99: at(0.99), p999: at(0.999), max: v.length === 0 ? NaN : v[v.length - 1] };
}
