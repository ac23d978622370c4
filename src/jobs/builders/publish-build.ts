// The last step of a build: upload the built files as artifacts (each upload atomic, its md5 taken on the
// way for IMS clients), write the manifest, then register the version (creating the image if needed) and
// move the channel, in one transaction. Until that commits nothing points at the new blobs; if anything
// fails or the job is stopped, the blobs this build added are removed again, so a failed build leaves
// no version and no stray artifact.
import { createReadStream } from 'node:fs';
import { addAbortSignal, pipeline, Readable } from 'node:stream';
import { Md5Meter } from '../../blobs/digest-meter.js';
import type { BlobStore, Clock, IdSource, Store } from '../../core/ports.js';
import { buildImageManifest, manifestArtifact, type ManifestArtifact } from '../../core/recipes/image-manifest.js';
import { ArtifactService } from '../../core/services/artifact-service.js';
import { ImageService } from '../../core/services/image-service.js';
import type { Arch, ArtifactRole, ImageVersion } from '../../core/types.js';

export interface BuiltFile {
  path: string;
  /** The artifact's name in the version (`vmlinuz`, `initrd.img`, `rootfs.squashfs`). */
  name: string;
  role: ArtifactRole;
  /** The manifest's type for it (IMS MIME types). */
  type: string;
}

export interface PublishRequest {
  image: string;
  version?: string | undefined;
  arch: Arch;
  cmdline: string;
  promote?: string | undefined;
  metadata: Record<string, unknown>;
  files: BuiltFile[];
  /** Who the channel history names. */
  actor: string;
  imageDescription: string;
}

export interface Published {
  version: ImageVersion;
  manifestSha256: string;
  promoted: string | null;
}

export interface PublishDeps {
  store: Store;
  blobs: BlobStore;
  clock: Clock;
  ids: IdSource;
}


export async function publishBuild(deps: PublishDeps, req: PublishRequest, signal: AbortSignal, log: (line: string) => void): Promise<Published> {
  const artifacts = new ArtifactService(deps.store, deps.blobs, deps.clock);
  const added: string[] = [];
  const stopped = () => {
    if (signal.aborted) throw new Error(`the build was stopped: ${(signal.reason as { message?: string } | undefined)?.message ?? 'the job stopped'}`);
  };
  try {
    const entries: ManifestArtifact[] = [];
    for (const f of req.files) {
      stopped();
      const md5 = new Md5Meter();
      // A stop aborts the read; the blob store then keeps nothing of this file.
      const source = addAbortSignal(signal, createReadStream(f.path, { highWaterMark: 1024 * 1024 }));
      const body = pipeline(source, md5, () => undefined);
      const { artifact, created } = await artifacts.upload(body, { mediaType: 'application/octet-stream' });
      if (created) added.push(artifact.sha256);
      entries.push(manifestArtifact({ name: f.name, role: f.role, type: f.type, sha256: artifact.sha256, md5: md5.digest(), size: artifact.size }));
      log(`[build] stored ${f.name} (${f.role}): ${artifact.size} bytes, sha256 ${artifact.sha256}${created ? '' : ' (already stored)'}`);
    }
    stopped();
    const manifest = Buffer.from(`${JSON.stringify(buildImageManifest(deps.clock.now().toISOString(), entries), null, 2)}\n`);
    const m = await artifacts.upload(Readable.from([manifest]), { mediaType: 'application/json' });
    if (m.created) added.push(m.artifact.sha256);
    log(`[build] stored manifest.json: sha256 ${m.artifact.sha256}`);
    stopped();

    // One transaction: the image (when new), the version and the channel, or none of them.
    const published = await deps.store.transaction(async (tx) => {
      const images = new ImageService(tx, deps.blobs, deps.clock, deps.ids);
      if ((await tx.getImage(req.image)) === null) await images.create({ name: req.image, description: req.imageDescription });
      const version = await images.createVersion(req.image, {
        version: req.version,
        arch: req.arch,
        cmdline: req.cmdline,
        metadata: { ...req.metadata, manifest: m.artifact.sha256 },
        artifacts: [...entries.map((e) => ({ name: e.name, role: e.role, sha256: e.sha256 })), { name: 'manifest.json', role: 'other' as const, sha256: m.artifact.sha256 }],
      });
      if (req.promote !== undefined) await images.promote(req.image, req.promote, version.version, req.actor, undefined);
      return version;
    });
    log(`[build] registered ${req.image} version ${published.version}${req.promote !== undefined ? `, channel ${req.promote} moved to it` : ''}`);
    return { version: published, manifestSha256: m.artifact.sha256, promoted: req.promote ?? null };
  } catch (err) {
    // Only what this build added and nothing else refers to (a version, a recipe, an IMS object).
    const removed = await new ImageService(deps.store, deps.blobs, deps.clock, deps.ids).collectGarbage(added).catch((e: unknown) => {
      log(`[build] could not remove the artifacts this build stored: ${(e as Error).message}`);
      return 0;
    });
    if (removed > 0) log(`[build] removed the ${removed} artifacts this build had stored`);
    throw err;
  }
}
