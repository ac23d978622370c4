// Disk images versioned by small integers ("0", "1", ...), one `disk.img` artifact each (BAAS images):
// next version, overwrite of the latest in place, and collection of the blob an overwrite replaced.
import { KilnError } from '../kiln-error.js';
import type { BlobStore, Clock, IdSource, Store } from '../ports.js';
import type { Artifact, Image, ImageVersion, Labels, VersionArtifact } from '../types.js';
import { validateLabels, validateName } from '../validate.js';

export const DISK_ARTIFACT = 'disk.img';
const INTEGER = /^(0|[1-9][0-9]{0,15})$/;

export interface DiskImageInput {
  description: string;
  labels: Labels;
  owner: string | null;
}

/** Integer versions in ascending order; versions with other names (made through the native API) are not disk versions. */
export function diskVersions(versions: readonly ImageVersion[]): ImageVersion[] {
  return versions.filter((v) => INTEGER.test(v.version)).sort((a, b) => Number(a.version) - Number(b.version));
}

/** The version's disk artifact; KILN_VERSION_INVALID when the version holds none (made by other means). */
export function diskOf(v: ImageVersion): VersionArtifact {
  const a = v.artifacts.find((x) => x.name === DISK_ARTIFACT);
  if (a === undefined) throw new KilnError('KILN_VERSION_INVALID', `version ${v.version} of ${v.image} has no ${DISK_ARTIFACT}`);
  return a;
}

export class VersionedDiskService {
  constructor(
    private readonly store: Store,
    /** Null: a replaced blob is left in place (its record too) instead of being collected. */
    private readonly blobs: BlobStore | null,
    private readonly clock: Clock,
    private readonly ids: IdSource,
  ) {}

  /** A new image named by a fresh id, with version "0" holding `artifact`, in one transaction. */
  async create(input: DiskImageInput, artifact: Artifact): Promise<{ image: Image; version: ImageVersion }> {
    const name = validateName(this.ids.id().toLowerCase(), 'image name');
    const labels = validateLabels(input.labels, 'KILN_NAME_INVALID');
    return this.store.transaction(async (tx) => {
      if (input.owner !== null && (await tx.getUser(input.owner)) === null) throw new KilnError('KILN_USER_NOT_FOUND', `no user ${JSON.stringify(input.owner)}`);
      const at = this.clock.now().toISOString();
      const image = await tx.createImage({ name, description: input.description, labels, owner: input.owner, createdAt: at, updatedAt: at, deletedAt: null, revision: 1 });
      const version = await tx.createVersion(this.versionOf(name, '0', await this.recorded(tx, artifact), at));
      return { image, version };
    });
  }

  /** Live images a user owns, by name. */
  async ownedBy(owner: string): Promise<Image[]> {
    return this.store.listImagesByOwner(owner);
  }

  /** Disk versions of a live or deleted image, ascending. */
  async versions(image: string): Promise<ImageVersion[]> {
    await this.image(this.store, image, true);
    return diskVersions(await this.store.listVersions(image));
  }

  async latest(image: string): Promise<ImageVersion> {
    const all = await this.versions(image);
    const last = all[all.length - 1];
    if (last === undefined) throw new KilnError('KILN_VERSION_NOT_FOUND', `image ${image} has no disk version`);
    return last;
  }

  async version(image: string, version: string): Promise<ImageVersion> {
    await this.image(this.store, image, true);
    const v = INTEGER.test(version) ? await this.store.getVersion(image, version) : null;
    if (v === null) throw new KilnError('KILN_VERSION_NOT_FOUND', `image ${image} has no version ${JSON.stringify(version.slice(0, 80))}`);
    return v;
  }

  /** Adds version last+1 (0 for an image without disk versions) holding `artifact`. */
  async addVersion(image: string, artifact: Artifact): Promise<ImageVersion> {
    // Serialized per image so two uploads never compute the same number (on any replica).
    return this.store.transaction(async (tx) => {
      await this.image(tx, image, false);
      const all = diskVersions(await tx.listVersions(image));
      const next = all.length === 0 ? 0 : Number(all[all.length - 1]!.version) + 1;
      return tx.createVersion(this.versionOf(image, String(next), await this.recorded(tx, artifact), this.clock.now().toISOString()));
    }, { serialize: `disk-versions:${image}` });
  }

  /**
   * Swaps the latest version's disk for `artifact` atomically (readers see the old bytes or the new,
   * never a mix), then collects the old blob unless another version still uses it.
   */
  async replaceLatest(image: string, artifact: Artifact): Promise<{ version: ImageVersion; collected: number }> {
    const { version, replaced } = await this.store.transaction(async (tx) => {
      await this.image(tx, image, false);
      const all = diskVersions(await tx.listVersions(image));
      const latest = all[all.length - 1];
      if (latest === undefined) throw new KilnError('KILN_VERSION_NOT_FOUND', `image ${image} has no disk version to overwrite`);
      const disk = { ...diskOf(latest), ...(await this.recorded(tx, artifact)) };
      const artifacts = latest.artifacts.map((a) => (a.name === DISK_ARTIFACT ? disk : a));
      const swapped = await tx.replaceVersionArtifacts(image, latest.version, artifacts);
      return { version: swapped, replaced: latest.artifacts.map((a) => a.sha256).filter((sha) => sha !== artifact.sha256) };
    }, { serialize: `disk-versions:${image}` });
    return { version, collected: await this.collect(replaced) };
  }

  private async image(tx: Store, name: string, allowDeleted: boolean): Promise<Image> {
    const image = await tx.getImage(name);
    if (image === null) throw new KilnError('KILN_IMAGE_NOT_FOUND', `no image ${JSON.stringify(name.slice(0, 80))}`);
    if (image.deletedAt !== null && !allowDeleted) throw new KilnError('KILN_IMAGE_DELETED', `image ${name} is deleted`);
    return image;
  }

  /** The artifact as recorded (an upload records it before the version refers to it). */
  private async recorded(tx: Store, artifact: Artifact): Promise<Omit<VersionArtifact, 'name' | 'role'>> {
    const stored = await tx.getArtifact(artifact.sha256);
    if (stored === null) throw new KilnError('KILN_VERSION_INVALID', `artifact ${artifact.sha256} has not been uploaded`, { sha256: artifact.sha256 });
    return { sha256: stored.sha256, size: stored.size, mediaType: stored.mediaType };
  }

  private versionOf(image: string, version: string, disk: Omit<VersionArtifact, 'name' | 'role'>, at: string): ImageVersion {
    return {
      id: this.ids.id(), image, version, arch: 'x86_64', cmdline: '', metadata: { kind: 'disk' },
      artifacts: [{ name: DISK_ARTIFACT, role: 'other', ...disk }], createdAt: at,
    };
  }

  /**
   * The purge's collection, for blobs an overwrite replaced: records go in one transaction with the
   * reference check, bytes to the trash after; a concurrent identical upload brings its bytes back
   * (ArtifactService checks the same from its side).
   */
  private async collect(candidates: readonly string[]): Promise<number> {
    const blobs = this.blobs;
    if (blobs === null || candidates.length === 0) return 0;
    const orphans = await this.store.transaction(async (tx) => {
      const found = await tx.unreferencedArtifacts(candidates);
      for (const sha of found) await tx.deleteArtifact(sha);
      return found;
    });
    let collected = 0;
    for (const sha of orphans) {
      await blobs.trash(sha);
      if ((await this.store.getArtifact(sha)) !== null) await blobs.restore(sha);
      else collected++;
    }
    return collected;
  }
}
