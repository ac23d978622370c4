// The benchmark harness keeps working: a tiny `npm run bench` run through all four cases must produce
// its JSON and markdown with a figure for Kiln in every row. Never a timing assertion: that is the
// benchmark's own (human) business.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { removeDir } from '../integration/helpers.js';
import { pgUnavailableReason } from '../support/pg-cluster.js';

interface Results {
  options: { quick: boolean };
  versions: { node: string; kiln: string };
  cases: { name: string; rows: { metric: string; kiln: number | null; reference: number | null }[] }[];
}

describe('npm run bench (smoke, tiny sizes)', () => {
  it('runs every case against Kiln (and nginx when present) and writes JSON and markdown', async () => {
    const out = await mkdtemp(join(tmpdir(), 'kiln-bench-out-'));
    try {
      const args = ['bench/run.mjs', '--quick', '--fleet', '2000', '--seconds', '1', '--artifact-mib', '8', '--machines', '40', '--concurrency', '8', '--upload-mib', '16', '--out', out];
      const run = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        execFile(process.execPath, args, { cwd: new URL('../..', import.meta.url).pathname, maxBuffer: 16 * 1024 * 1024 }, (err, _stdout, stderr) => {
          resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stderr });
        });
      });
      expect(run.code, run.stderr.slice(-3000)).toBe(0);
      const files = await readdir(out);
      const json = files.find((f) => f.endsWith('.json'));
      expect(json, files.join(', ')).toBeDefined();
      expect(files).toContain(json!.replace(/\.json$/, '.md'));
      const results = JSON.parse(await readFile(join(out, json!), 'utf8')) as Results;
      expect(results.options.quick).toBe(true);
      expect(results.cases.map((c) => c.name)).toEqual(['render', 'artifacts', 'storm', 'upload']);
      for (const c of results.cases) {
        expect(c.rows.length, c.name).toBeGreaterThan(0);
        const measured = c.rows.filter((r) => typeof r.kiln === 'number' && Number.isFinite(r.kiln));
        expect(measured.length, `${c.name}: rows with a Kiln figure`).toBeGreaterThan(0);
      }
      const failed = results.cases.find((c) => c.name === 'storm')!.rows.find((r) => r.metric === 'failed machines');
      expect(failed?.kiln).toBe(0);
      // Render on PostgreSQL too wherever a private cluster can run (always in CI).
      if (pgUnavailableReason() === null) {
        const pg = results.cases.find((c) => c.name === 'render')!.rows.find((r) => r.metric === 'on PostgreSQL: req/s, c=64');
        expect(Number.isFinite(pg?.kiln), JSON.stringify(pg)).toBe(true);
      }
    } finally {
      await removeDir(out);
    }
  }, 240_000);
});
