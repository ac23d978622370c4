import { describe, expect, it } from 'vitest';
import { isManifestArtifact, manifestWantsMd5, refreshManifest, replaceDigests } from './refresh-manifest.js';

const OLD = 'a'.repeat(64);
const NEW = 'b'.repeat(64);
const KERNEL = 'c'.repeat(64);

describe('refreshManifest', () => {
  it('points every record of the old rootfs at the new one, links included, and renews created', () => {
    const doc = {
      version: '1.0',
      created: '2030-01-01T00:00:00Z',
      artifacts: [
        { name: 'rootfs.squashfs', sha256: OLD, size: 100, md5: 'x', link: { path: `/api/v1/artifacts/${OLD}`, etag: OLD, type: 'kiln' } },
        { name: 'vmlinuz', sha256: KERNEL, size: 5 },
      ],
    };
    expect(manifestWantsMd5(doc, OLD)).toBe(true);
    const { doc: out, replaced } = refreshManifest(doc, OLD, { sha256: NEW, size: 42, md5: 'y' }, '2031-01-01T00:00:00Z');
    expect(replaced).toBe(1);
    expect(out).toEqual({
      version: '1.0',
      created: '2031-01-01T00:00:00Z',
      artifacts: [
        { name: 'rootfs.squashfs', sha256: NEW, size: 42, md5: 'y', link: { path: `/api/v1/artifacts/${NEW}`, etag: NEW, type: 'kiln' } },
        { name: 'vmlinuz', sha256: KERNEL, size: 5 },
      ],
    });
    expect(doc.artifacts[0]!.sha256).toBe(OLD);
  });

  it('reports a manifest that does not describe the rootfs', () => {
    expect(refreshManifest({ artifacts: [{ sha256: KERNEL }] }, OLD, { sha256: NEW, size: 1 }, 'now').replaced).toBe(0);
    expect(manifestWantsMd5({ artifacts: [{ sha256: OLD, size: 1 }] }, OLD)).toBe(false);
  });

  it('recognises the manifest artifact by name and role', () => {
    expect(isManifestArtifact({ name: 'manifest.json', role: 'other' })).toBe(true);
    expect(isManifestArtifact({ name: 'image-manifest.json', role: 'other' })).toBe(true);
    expect(isManifestArtifact({ name: 'manifest.json', role: 'initrd' })).toBe(false);
    expect(isManifestArtifact({ name: 'notamanifest.json', role: 'other' })).toBe(false);
  });

  it('rewrites digests in version metadata (a manifest named by its sha256)', () => {
    const meta = { manifest: OLD, recipe: 'r', nested: [{ link: `x/${KERNEL}` }], n: 1 };
    expect(replaceDigests(meta, new Map([[OLD, NEW], [KERNEL, 'k']]))).toEqual({ manifest: NEW, recipe: 'r', nested: [{ link: 'x/k' }], n: 1 });
  });
});
