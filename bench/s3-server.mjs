// An S3-speaking server for the boot storm's proxy variant: s3rver, the JavaScript mock the tests
// use, in its own child process so that its CPU is measured apart from the bench process's.
// Path-style addressing, s3rver's fixed credentials, objects in a directory the caller owns.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { onCleanup, stopChild } from './cleanup.mjs';
import { treeCpuSeconds } from './proc-stats.mjs';

const CHILD = fileURLToPath(new URL('./jobs/s3rver-child.mjs', import.meta.url));

/** null when s3rver loads; else why not (it is a devDependency, absent from production installs). */
export function s3rverMissing() {
  try {
    createRequire(import.meta.url)('s3rver');
    return null;
  } catch (err) {
    return String(err.message ?? err).split('\n')[0];
  }
}

/** Starts s3rver storing into `directory`; resolves once it listens. */
export async function startS3rver({ directory }) {
  const child = spawn(process.execPath, [CHILD, directory], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = onCleanup(`s3rver ${child.pid}`, () => stopChild(child, { signal: 'SIGTERM', graceMs: 5000 }));
  // Its stderr tail explains a failed start.
  let tail = '';
  child.stderr.on('data', (d) => (tail = (tail + d).slice(-8192)));
  const port = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /^port (\d+)$/m.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code, signal) => reject(new Error(`s3rver exited (${code ?? signal}) before it was ready:\n${tail}`)));
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const region = 'us-east-1';
  // s3rver's fixed credentials.
  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  return {
    name: 's3rver',
    endpoint,
    region,
    credentials,
    pid: child.pid,
    cpuSeconds: () => treeCpuSeconds(child.pid),
    async createBucket(bucket) {
      // Checksums only when required: the SDK's default aws-chunked bodies are not for s3rver.
      const client = new S3Client({ endpoint, region, credentials, forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
      try {
        await client.send(new CreateBucketCommand({ Bucket: bucket }));
      } finally {
        client.destroy();
      }
    },
    stop,
  };
}
