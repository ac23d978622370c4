// `kiln demo`, the README's tour, run as a user would: the binary against a running Kiln. It builds the
// image, registers it, boots a QEMU VM with its console streamed, and shows the machine booted.
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { e2eGate } from './support/e2e-prerequisites.js';
import { startE2eKiln, type E2eKiln } from './support/kiln-server.js';

const gate = e2eGate('vm', 'e2e: kiln demo');
const BIN = new URL('../../bin/kiln.js', import.meta.url).pathname;

describe.skipIf(gate.skip)(gate.title, () => {
  let kiln: E2eKiln;

  beforeAll(async () => {
    kiln = await startE2eKiln();
  }, 60_000);

  afterAll(async () => {
    await kiln?.stop();
  });

  it('network-boots a VM from the running Kiln and lists the machine as booted', async () => {
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [BIN, '--server', kiln.adminUrl, '--data-dir', kiln.dataDir, 'demo', '--timeout', '150'], { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
      });
    });
    const why = `kiln demo exited ${run.code}\n--- stderr\n${run.stderr}\n--- last console lines\n${run.stdout.split('\n').slice(-25).join('\n')}`;
    expect(run.code, why).toBe(0);
    expect(run.stdout, why).toContain('KILN-IMAGE-CALLBACK-OK');
    expect(run.stdout, why).toMatch(/^52:54:00:[0-9a-f:]{8}\s+booted\s+kiln-demo\s/m);
    expect(run.stderr, why).toContain('network-booted from Kiln and called back');
  }, 200_000);
});
