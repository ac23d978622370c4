// Image setups (frozen image versions a management OS writes), each machine's FIFO boot queue, and
// what a machine may read or write because of the setup it took last.
import { KilnError } from '../kiln-error.js';
import type { BlobStore, Clock, ExpectedRevision, IdSource, Store } from '../ports.js';
import type { BootQueueEntry, ImageSetup, SetupImage } from '../types.js';
import { VersionedDiskService } from './versioned-disk-service.js';

export interface SetupInput {
  name: string;
  owner: string | null;
  images?: SetupImage[] | undefined;
}

export interface QueuedBoot {
  machineId: string;
  setup: string;
  update: boolean;
  actor: string;
}

/** What a machine's management OS may do with an image. */
export type MachineImageAccess = 'none' | 'read' | 'write';

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

function validateSetupName(name: string): string {
  if (typeof name !== 'string' || name.trim() === '' || name.length > 128 || CONTROL.test(name)) {
    throw new KilnError('KILN_SETUP_INVALID', 'an image setup name has 1 to 128 characters and no control characters');
  }
  return name;
}

export class ImageSetupService {
  /** BAAS images: integer versions of one disk each. */
  readonly disks: VersionedDiskService;

  constructor(
    protected readonly store: Store,
    protected readonly clock: Clock,
    protected readonly ids: IdSource,
    /** Lets disk overwrites collect the blob they replaced; without it the old blob stays. */
    blobs: BlobStore | null = null,
  ) {
    this.disks = new VersionedDiskService(store, blobs, clock, ids);
  }

  async create(input: SetupInput): Promise<ImageSetup> {
    const name = validateSetupName(input.name);
    return this.store.transaction(async (tx) => {
      if (input.owner !== null && (await tx.getUser(input.owner)) === null) throw new KilnError('KILN_USER_NOT_FOUND', `no user ${JSON.stringify(input.owner)}`);
      const images = await this.checkImages(tx, input.images ?? []);
      const at = this.clock.now().toISOString();
      return tx.createImageSetup({ id: this.ids.id(), name, owner: input.owner, images, createdAt: at, updatedAt: at, revision: 1 });
    });
  }

  async get(id: string): Promise<ImageSetup> {
    const s = id.length <= 128 ? await this.store.getImageSetup(id) : null;
    if (s === null) throw new KilnError('KILN_SETUP_NOT_FOUND', `no image setup ${JSON.stringify(id.slice(0, 80))}`);
    return s;
  }

  async list(filter: { owner?: string | undefined } = {}): Promise<ImageSetup[]> {
    return this.store.listImageSetups(filter);
  }

  async rename(id: string, name: string, expected: ExpectedRevision): Promise<ImageSetup> {
    validateSetupName(name);
    return this.modify(id, expected, (s) => ({ ...s, name }));
  }

  async delete(id: string, expected: ExpectedRevision): Promise<void> {
    await this.get(id);
    await this.store.deleteImageSetup(id, expected);
  }

  /** Freezes a version of an image in the setup; an image already there gets the new version and flag. */
  async addImage(id: string, entry: SetupImage, expected?: ExpectedRevision): Promise<ImageSetup> {
    return this.modify(id, expected, async (s, tx) => {
      const [checked] = await this.checkImages(tx, [entry]);
      const images = s.images.some((i) => i.image === entry.image) ? s.images.map((i) => (i.image === entry.image ? checked! : i)) : [...s.images, checked!];
      return { ...s, images };
    });
  }

  /** Removes the image (only when frozen at `version`, if given); KILN_SETUP_INVALID when it is not there. */
  async removeImage(id: string, image: string, version?: string, expected?: ExpectedRevision): Promise<ImageSetup> {
    return this.modify(id, expected, (s) => {
      const images = s.images.filter((i) => !(i.image === image && (version === undefined || i.version === version)));
      if (images.length === s.images.length) throw new KilnError('KILN_SETUP_INVALID', `image setup ${id} does not hold image ${image}${version === undefined ? '' : ` at version ${version}`}`);
      return { ...s, images };
    });
  }

  /** Drops a removed image from every setup that froze it. */
  async forgetImage(image: string): Promise<number> {
    let changed = 0;
    for (const s of await this.store.listImageSetups({})) {
      if (!s.images.some((i) => i.image === image)) continue;
      await this.modify(s.id, undefined, (cur) => ({ ...cur, images: cur.images.filter((i) => i.image !== image) })).catch((err: unknown) => {
        if (!(err instanceof KilnError && err.code === 'KILN_SETUP_NOT_FOUND')) throw err;
      });
      changed++;
    }
    return changed;
  }

  /** Appends to the machine's boot queue; `actor` is who asked (kept with the entry). */
  async enqueue(boot: QueuedBoot): Promise<BootQueueEntry> {
    if ((await this.store.getMachine(boot.machineId)) === null) throw new KilnError('KILN_MACHINE_NOT_FOUND', `no machine ${JSON.stringify(boot.machineId)}`);
    await this.get(boot.setup);
    return this.store.enqueueBoot({ machineId: boot.machineId, setup: boot.setup, update: boot.update, actor: boot.actor, createdAt: this.clock.now().toISOString() });
  }

  /** Takes the oldest waiting entry (each concurrent caller gets a different one), with its setup; null when none waits. */
  async pop(machineId: string): Promise<{ entry: BootQueueEntry; setup: ImageSetup } | null> {
    for (;;) {
      const entry = await this.store.popBoot(machineId, this.clock.now().toISOString());
      if (entry === null) return null;
      const setup = await this.store.getImageSetup(entry.setup);
      // Deleting a setup deletes its entries; one deleted between the pop and this read is skipped.
      if (setup !== null) return { entry, setup };
    }
  }

  /** Waiting entries oldest first, or (popped) taken entries newest first. */
  async queue(machineId: string, opts: { popped: boolean; limit: number }): Promise<BootQueueEntry[]> {
    if ((await this.store.getMachine(machineId)) === null) throw new KilnError('KILN_MACHINE_NOT_FOUND', `no machine ${JSON.stringify(machineId)}`);
    return this.store.listBootQueue(machineId, opts);
  }

  /** The setup the machine took last, or null. */
  async lastPopped(machineId: string): Promise<{ entry: BootQueueEntry; setup: ImageSetup } | null> {
    const [entry] = await this.store.listBootQueue(machineId, { popped: true, limit: 1 });
    if (entry === undefined) return null;
    const setup = await this.store.getImageSetup(entry.setup);
    return setup === null ? null : { entry, setup };
  }

  /**
   * A management OS may read the images of the setup its machine took last, and send new versions of
   * those frozen with `update` back.
   */
  async machineImageAccess(machineId: string, image: string): Promise<MachineImageAccess> {
    const last = await this.lastPopped(machineId);
    const frozen = last?.setup.images.find((i) => i.image === image);
    if (frozen === undefined) return 'none';
    return frozen.update ? 'write' : 'read';
  }

  private async modify(id: string, expected: ExpectedRevision, change: (s: ImageSetup, tx: Store) => ImageSetup | Promise<ImageSetup>): Promise<ImageSetup> {
    return this.store.transaction(async (tx) => {
      const cur = await tx.getImageSetup(id);
      if (cur === null) throw new KilnError('KILN_SETUP_NOT_FOUND', `no image setup ${JSON.stringify(id.slice(0, 80))}`);
      if (expected !== undefined && cur.revision !== expected) throw new KilnError('KILN_PRECONDITION_FAILED', `image setup ${id} was changed by someone else; fetch it again`);
      const next = await change(cur, tx);
      return tx.replaceImageSetup({ ...next, updatedAt: this.clock.now().toISOString(), revision: cur.revision + 1 }, cur.revision);
    });
  }

  private async checkImages(tx: Store, images: readonly SetupImage[]): Promise<SetupImage[]> {
    const out: SetupImage[] = [];
    for (const i of images) {
      if (typeof i.image !== 'string' || typeof i.version !== 'string' || typeof i.update !== 'boolean') throw new KilnError('KILN_SETUP_INVALID', 'a frozen image has an image name, a version and an update flag');
      const image = i.image.length <= 128 ? await tx.getImage(i.image) : null;
      if (image === null || image.deletedAt !== null) throw new KilnError('KILN_SETUP_INVALID', `no image ${JSON.stringify(i.image.slice(0, 80))}`, { image: i.image.slice(0, 80) });
      if (i.version.length > 128 || (await tx.getVersion(i.image, i.version)) === null) {
        throw new KilnError('KILN_SETUP_INVALID', `image ${i.image} has no version ${JSON.stringify(i.version.slice(0, 80))}`, { image: i.image, version: i.version.slice(0, 80) });
      }
      out.push({ image: i.image, version: i.version, update: i.update });
    }
    return out;
  }
}
