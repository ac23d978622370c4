// Result rows and their Markdown: each row is Kiln's figure, the reference's from the same run,
// the ratio and the issue's target (#7). A verdict is information only; nothing fails on a timing.

/**
 * `target`: { ratioAtLeast } | { ratioAtMost } (Kiln ÷ reference) | { atMost } | { below } (Kiln's
 * own figure, e.g. CPU-s/GB, MB of RSS, failures) | undefined (shown for context).
 */
export function row(metric, { kiln, reference = null, unit = '', target, digits = 2 }) {
  const ratio = Number.isFinite(kiln) && Number.isFinite(reference) && reference !== 0 ? kiln / reference : null;
  let targetText = '';
  let met = null;
  if (target?.ratioAtLeast !== undefined) {
    targetText = `≥ ${target.ratioAtLeast}x`;
    met = ratio === null ? null : ratio >= target.ratioAtLeast;
  } else if (target?.ratioAtMost !== undefined) {
    targetText = `≤ ${target.ratioAtMost}x`;
    met = ratio === null ? null : ratio <= target.ratioAtMost;
  } else if (target?.atMost !== undefined) {
    targetText = target.atMost === 0 ? '0' : `≤ ${target.atMost}${unit ? ` ${unit}` : ''}`;
    met = Number.isFinite(kiln) ? kiln <= target.atMost : null;
  } else if (target?.below !== undefined) {
    targetText = `< ${target.below}${unit ? ` ${unit}` : ''}`;
    met = Number.isFinite(kiln) ? kiln < target.below : null;
  }
  return { metric, unit, kiln, reference, ratio, target: targetText, met, digits };
}

export function fmt(n, digits = 2) {
  if (n === null || n === undefined || Number.isNaN(n)) return '-';
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString('en-US');
  if (Math.abs(n) >= 100) return n.toFixed(0);
  return n.toFixed(digits);
}

const verdict = (met) => (met === null ? '' : met ? 'met' : '**missed**');

export function markdownReport({ startedAt, options, facts, versions, cases }) {
  const out = [];
  out.push(`# Kiln benchmark, ${startedAt}`, '');
  out.push(`${facts.cores} cores (${facts.cpuModel}), ${facts.memoryGiB} GiB, Linux ${facts.kernel}, load average at start ${facts.loadAverageAtStart.join(' / ')}; ` +
    `Node ${versions.node}; ${versions.nginx ?? 'nginx: not available'}; Kiln ${versions.kiln} (${versions.commit}). Mode: ${options.quick ? 'quick (smoke test sizes)' : 'full'}.`, '');
  out.push('Every ratio is Kiln ÷ the reference measured in the same run, against the same client on the same cores. ' +
    'Client and servers share this machine: the client\'s own CPU and everyone else\'s ("other": other processes plus loopback softirq) are reported per run; ' +
    'a run with much "other" CPU is noisy. GB and MB are 10^9 and 10^6 bytes. Benchmarks never fail: "missed" is information.', '');
  out.push('| case | metric | Kiln | reference | ratio | target | |', '|---|---|---|---|---|---|---|');
  for (const c of cases) {
    if (c.error !== undefined) {
      out.push(`| ${c.name} | failed to run: ${c.error.split('\n')[0].replaceAll('|', '\\|').slice(0, 200)} | | | | | |`);
      continue;
    }
    for (const r of c.rows) {
      const unit = r.unit ? ` ${r.unit}` : '';
      out.push(`| ${c.name} | ${r.metric} | ${fmt(r.kiln, r.digits)}${unit} | ${r.reference === null ? '-' : `${fmt(r.reference, r.digits)}${unit}`} | ${r.ratio === null ? '-' : `${r.ratio.toFixed(2)}x`} | ${r.target} | ${verdict(r.met)} |`);
    }
  }
  for (const c of cases) {
    if (c.details === undefined) continue;
    out.push('', `## ${c.name}`, '', ...c.details);
  }
  return `${out.join('\n')}\n`;
}

/** One line per measured run: the server, what it did, and where the CPU went. */
export function runsTable(runs) {
  const lines = ['| run | server | figure | p50 / p99 / p99.9 ms | server CPU % | client CPU % | other CPU % | errors |', '|---|---|---|---|---|---|---|---|'];
  for (const r of runs) {
    lines.push(`| ${r.label} | ${r.server} | ${r.figure} | ${r.latency ?? '-'} | ${fmt(r.serverCpuPct, 0)} | ${fmt(r.clientCpuPct, 0)} | ${fmt(r.otherCpuPct, 0)} | ${r.errors} |`);
  }
  return lines;
}

/** The CPU columns of runsTable from a runClient measurement. */
export const cpuColumns = (m) => ({ serverCpuPct: m.serverCpuPct, clientCpuPct: m.clientCpuPct, otherCpuPct: m.otherCpuPct });
