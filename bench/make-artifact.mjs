// Artifact files for a run: `bytes` of pseudo-random data (a 16 MiB random block, repeated: content
// doesn't matter to sendfile or streams, and nothing compresses on the way), and their sha256.
import { createHash, randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';

export async function makeArtifact(path, bytes) {
  const block = randomBytes(Math.min(bytes, 16 * 2 ** 20));
  const hash = createHash('sha256');
  const fh = await open(path, 'w');
  try {
    for (let written = 0; written < bytes; ) {
      const chunk = block.subarray(0, Math.min(block.length, bytes - written));
      hash.update(chunk);
      await fh.write(chunk);
      written += chunk.length;
    }
  } finally {
    await fh.close();
  }
  return { path, size: bytes, sha256: hash.digest('hex') };
}
