// Images, their immutable versions, and channels with promote / rollback history; soft delete, restore, purge.
import { KilnError } from '../kiln-error.js';
import { rollbackTarget } from '../channel-history.js';
import type { BlobStore, Clock, ExpectedRevision, IdSource, Store } from '../ports.js';
import type { Arch, ArtifactRole, Channel, ChannelHistoryEntry, Image, ImageVersion, Labels, VersionArtifact } from '../types.js';
import { validateArtifactName, validateCmdline, validateLabels, validateName, validateSha256, validateVersion } from '../validate.js';

export interface NewVersion {
  version?: string | undefined;
  arch?: Arch | undefined;
  cmdline?: string | undefined;
  metadata?: Record<string, unknown> | undefined;
  artifacts: { name: string; role: ArtifactRole; sha256: string }[];
}

const ROLE_ORDER: Record<ArtifactRole, number> = { kernel: 0, initrd: 1, rootfs: 2, other: 3 };

export class ImageService {
  constructor(
    private readonly store: Store,
    private readonly blobs: BlobStore,
    private readonly clock: Clock,
    private readonly ids: IdSource,
  ) {}

  async create(input: { name: string; description?: string | undefined; labels?: Labels | undefined; owner?: string | null | undefined }): Promise<Image> {
    const at = this.clock.now().toISOString();
    return this.store.createImage({
      name: validateName(input.name, 'image name'),
      description: input.description ?? '',
      labels: validateLabels(input.labels ?? {}, 'KILN_NAME_INVALID'),
      owner: input.owner ?? null,
      createdAt: at,
      updatedAt: at,
      deletedAt: null,
      revision: 1,
    });
  }

  async list(opts: { deleted: boolean }): Promise<Image[]> {
    return this.store.listImages(opts);
  }

  /** A live image; deleted ones only with `allowDeleted`. */
  async get(name: string, allowDeleted = false): Promise<Image> {
    const image = await this.store.getImage(name);
    if (image === null || (image.deletedAt !== null && !allowDeleted)) throw new KilnError('KILN_IMAGE_NOT_FOUND', `no image ${JSON.stringify(name)}`);
    return image;
  }

  async update(name: string, patch: { description?: string | undefined; labels?: Labels | undefined }, expected: ExpectedRevision): Promise<Image> {
    await this.get(name);
    const clean: Partial<Pick<Image, 'description' | 'labels'>> = {};
    if (patch.description !== undefined) clean.description = patch.description;
    if (patch.labels !== undefined) clean.labels = validateLabels(patch.labels, 'KILN_NAME_INVALID');
    return this.store.updateImage(name, clean, this.clock.now().toISOString(), expected);
  }

  /** Soft delete: hidden from lists and boots, restorable until purged. */
  async delete(name: string, expected: ExpectedRevision): Promise<Image> {
    await this.get(name);
    const at = this.clock.now().toISOString();
    return this.store.updateImage(name, { deletedAt: at }, at, expected);
  }

  async restore(name: string): Promise<Image> {
    const image = await this.get(name, true);
    if (image.deletedAt === null) return image;
    return this.store.updateImage(name, { deletedAt: null }, this.clock.now().toISOString(), undefined);
  }

  /** Removes a soft-deleted image for good, then the blobs nothing else refers to. */
  async purge(name: string): Promise<{ purgedBlobs: number }> {
    const candidates = await this.store.transaction(async (tx) => {
      const image = await tx.getImage(name);
      if (image === null) throw new KilnError('KILN_IMAGE_NOT_FOUND', `no image ${JSON.stringify(name)}`);
      if (image.deletedAt === null) throw new KilnError('KILN_IMAGE_NOT_DELETED', `delete image ${name} before purging it`);
      const users = await tx.imageUsers(name);
      if (users.length > 0) throw new KilnError('KILN_IMAGE_IN_USE', `profiles use image ${name}: ${users.join(', ')}`, { profiles: users });
      const shas = new Set((await tx.listVersions(name)).flatMap((v) => v.artifacts.map((a) => a.sha256)));
      await tx.purgeImage(name);
      return [...shas];
    });
    return { purgedBlobs: await this.collectGarbage(candidates) };
  }

  /**
   * Moves to the trash those candidate blobs no version refers to. Only blobs of purged versions are
   * candidates, so an upload that is not yet part of a version is never collected. Record first, then
   * bytes: a concurrent reader sees "not found", never a torn file.
   */
  async collectGarbage(candidates: readonly string[]): Promise<number> {
    // Records go in one transaction with the reference check, so a version created concurrently
    // either keeps its blob (it committed first) or is refused for a missing artifact (it came after).
    const orphans = await this.store.transaction(async (tx) => {
      const found = await tx.unreferencedArtifacts(candidates);
      for (const sha of found) await tx.deleteArtifact(sha);
      return found;
    });
    for (const sha of orphans) await this.blobs.trash(sha);
    // An identical upload may have recorded the artifact again meanwhile (here or on another
    // replica): its bytes come back. The upload checks the same from its side (ArtifactService), so
    // whichever order the two run in, a record never outlives its bytes.
    let collected = 0;
    for (const sha of orphans) {
      if ((await this.store.getArtifact(sha)) !== null) await this.blobs.restore(sha);
      else collected++;
    }
    return collected;
  }

  async createVersion(imageName: string, input: NewVersion): Promise<ImageVersion> {
    return this.store.transaction(async (tx) => {
      const image = await tx.getImage(imageName);
      if (image === null) throw new KilnError('KILN_IMAGE_NOT_FOUND', `no image ${JSON.stringify(imageName)}`);
      if (image.deletedAt !== null) throw new KilnError('KILN_IMAGE_DELETED', `image ${imageName} is deleted`);
      const version = validateVersion(input.version ?? String((await tx.countVersions(imageName)) + 1));
      const artifacts = await this.resolveArtifacts(tx, input.artifacts);
      return tx.createVersion({
        id: this.ids.id(),
        image: imageName,
        version,
        arch: input.arch ?? 'x86_64',
        cmdline: validateCmdline(input.cmdline ?? ''),
        metadata: input.metadata ?? {},
        artifacts,
        createdAt: this.clock.now().toISOString(),
      });
    });
  }

  private async resolveArtifacts(tx: Store, input: NewVersion['artifacts']): Promise<VersionArtifact[]> {
    const names = new Set<string>();
    const out: VersionArtifact[] = [];
    for (const a of input) {
      validateArtifactName(a.name);
      validateSha256(a.sha256);
      if (names.has(a.name)) throw new KilnError('KILN_VERSION_INVALID', `artifact name ${a.name} is used twice`);
      names.add(a.name);
      const stored = await tx.getArtifact(a.sha256);
      if (stored === null) throw new KilnError('KILN_VERSION_INVALID', `artifact ${a.sha256} (${a.name}) has not been uploaded`, { sha256: a.sha256 });
      out.push({ name: a.name, role: a.role, sha256: a.sha256, size: stored.size, mediaType: stored.mediaType });
    }
    const kernels = out.filter((a) => a.role === 'kernel').length;
    if (kernels !== 1) throw new KilnError('KILN_VERSION_INVALID', `a version needs exactly one kernel, got ${kernels}`);
    // Stable sort keeps the caller's initrd order, which is the load order.
    return out.sort((a, b) => ROLE_ORDER[a.role] - ROLE_ORDER[b.role]);
  }

  async listVersions(imageName: string): Promise<ImageVersion[]> {
    await this.get(imageName, true);
    return this.store.listVersions(imageName);
  }

  async getVersion(imageName: string, version: string): Promise<ImageVersion> {
    await this.get(imageName, true);
    const v = await this.store.getVersion(imageName, version);
    if (v === null) throw new KilnError('KILN_VERSION_NOT_FOUND', `image ${imageName} has no version ${JSON.stringify(version)}`);
    return v;
  }

  async listChannels(imageName: string): Promise<Channel[]> {
    await this.get(imageName, true);
    return this.store.listChannels(imageName);
  }

  async getChannel(imageName: string, name: string): Promise<{ channel: Channel; history: ChannelHistoryEntry[] }> {
    await this.get(imageName, true);
    const channel = await this.store.getChannel(imageName, name);
    if (channel === null) throw new KilnError('KILN_CHANNEL_NOT_FOUND', `image ${imageName} has no channel ${JSON.stringify(name)}`);
    return { channel, history: await this.store.channelHistory(imageName, name) };
  }

  async promote(imageName: string, channel: string, version: string, actor: string, expected: ExpectedRevision): Promise<Channel> {
    validateName(channel, 'channel name');
    return this.store.transaction(async (tx) => {
      const image = await tx.getImage(imageName);
      if (image === null) throw new KilnError('KILN_IMAGE_NOT_FOUND', `no image ${JSON.stringify(imageName)}`);
      if (image.deletedAt !== null) throw new KilnError('KILN_IMAGE_DELETED', `image ${imageName} is deleted`);
      if ((await tx.getVersion(imageName, version)) === null) {
        throw new KilnError('KILN_VERSION_NOT_FOUND', `image ${imageName} has no version ${JSON.stringify(version)}`);
      }
      return tx.moveChannel({ image: imageName, name: channel, toVersion: version, action: 'promote', actor, at: this.clock.now().toISOString() }, expected);
    });
  }

  /** Removes a channel and its history (profiles naming it then have nothing to boot). */
  async deleteChannel(imageName: string, channel: string): Promise<void> {
    await this.get(imageName, true);
    await this.store.deleteChannel(imageName, channel);
  }

  async rollback(imageName: string, channel: string, actor: string, expected: ExpectedRevision): Promise<Channel> {
    return this.store.transaction(async (tx) => {
      const image = await tx.getImage(imageName);
      if (image === null || image.deletedAt !== null) throw new KilnError('KILN_IMAGE_NOT_FOUND', `no image ${JSON.stringify(imageName)}`);
      if ((await tx.getChannel(imageName, channel)) === null) throw new KilnError('KILN_CHANNEL_NOT_FOUND', `image ${imageName} has no channel ${JSON.stringify(channel)}`);
      const target = rollbackTarget(await tx.channelHistory(imageName, channel));
      if (target === null) throw new KilnError('KILN_CHANNEL_NO_PREVIOUS', `channel ${channel} of ${imageName} has no earlier version`);
      return tx.moveChannel({ image: imageName, name: channel, toVersion: target, action: 'rollback', actor, at: this.clock.now().toISOString() }, expected);
    });
  }
}
