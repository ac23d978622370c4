// Read-through caches for the boot path (implements PlanReader), kept exact by the store's change notifications:
// a boot storm reads memory, not the database. Every write invalidates what it touched.
import type { Change, Store } from './ports.js';
import { indexGroups, type GroupIndex } from './select-group.js';
import type { Channel, Group, Image, ImageVersion, Machine, Profile } from './types.js';

const MAX_MACHINES = 250_000;

export class BootCache {
  private groups: GroupIndex<Group> | null = null;
  private readonly profiles = new Map<string, Profile | null>();
  private readonly images = new Map<string, Image | null>();
  private readonly channels = new Map<string, Channel | null>();
  private readonly versions = new Map<string, ImageVersion | null>();
  private readonly machinesByMac = new Map<string, Machine>();
  private readonly macsById = new Map<string, readonly string[]>();
  /** Bumped by every invalidation; a fill that started before a bump is not stored (it may be stale). */
  private generation = 0;
  private closed = false;
  private warmedMachines: number | null = null;
  private readonly unsubscribe: () => void;

  constructor(private readonly store: Store) {
    this.unsubscribe = store.onChange((c) => this.invalidate(c));
  }

  close(): void {
    this.closed = true;
    this.unsubscribe();
  }

  /** Machines loaded by `warm` once it has finished; null before, while it runs, or if it failed. */
  get warmed(): number | null {
    return this.warmedMachines;
  }

  /**
   * Loads the fleet's machines (up to the cache's size) page by page, so that the first boot of each
   * machine after a start reads memory too: in a storm nearly every script request is some machine's
   * first. A page read while anything changed is dropped, as in any fill; boots during the warm-up
   * simply fill as usual.
   */
  async warm(pageSize = 2000): Promise<number> {
    let after: string | undefined;
    let loaded = 0;
    while (!this.closed && loaded < MAX_MACHINES) {
      const gen = this.generation;
      const page = await this.store.listMachines({ after, limit: pageSize });
      if (page.length === 0) break;
      if (gen === this.generation && !this.closed) {
        for (const m of page) this.remember(m);
        loaded += page.length;
      }
      after = page.at(-1)!.id;
      // Let boot requests in between pages.
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (!this.closed) this.warmedMachines = loaded;
    return loaded;
  }

  private remember(m: Machine): void {
    if (this.macsById.has(m.id)) return;
    if (this.machinesByMac.size + m.macs.length > MAX_MACHINES) return;
    for (const mac of m.macs) this.machinesByMac.set(mac, m);
    this.macsById.set(m.id, m.macs);
  }

  private invalidate(c: Change): void {
    this.generation++;
    switch (c.entity) {
      case 'group':
        this.groups = null;
        break;
      case 'profile':
        this.profiles.delete(c.key);
        break;
      case 'image':
        // A purge removes versions and channels too.
        this.images.delete(c.key);
        dropPrefix(this.channels, c.key);
        dropPrefix(this.versions, c.key);
        break;
      case 'channel':
        // Keyed by image: channels per image are few.
        dropPrefix(this.channels, c.key);
        break;
      case 'machine':
        for (const mac of this.macsById.get(c.key) ?? []) this.machinesByMac.delete(mac);
        this.macsById.delete(c.key);
        break;
      case 'all':
        this.groups = null;
        for (const m of [this.profiles, this.images, this.channels, this.versions, this.machinesByMac, this.macsById]) m.clear();
        break;
      case 'artifact':
      case 'token':
      case 'payload':
      case 'user':
      case 'image-setup':
        break;
    }
  }

  private async fill<K, V>(map: Map<K, V>, key: K, load: () => Promise<V>): Promise<V> {
    if (map.has(key)) return map.get(key)!;
    const gen = this.generation;
    const value = await load();
    if (gen === this.generation) map.set(key, value);
    return value;
  }

  async groupIndex(): Promise<GroupIndex<Group>> {
    if (this.groups !== null) return this.groups;
    const gen = this.generation;
    const index = indexGroups(await this.store.listGroups());
    if (gen === this.generation) this.groups = index;
    return index;
  }

  getProfile(name: string): Promise<Profile | null> {
    return this.fill(this.profiles, name, () => this.store.getProfile(name));
  }

  getImage(name: string): Promise<Image | null> {
    return this.fill(this.images, name, () => this.store.getImage(name));
  }

  getChannel(image: string, name: string): Promise<Channel | null> {
    return this.fill(this.channels, `${image}\u0000${name}`, () => this.store.getChannel(image, name));
  }

  getVersion(image: string, version: string): Promise<ImageVersion | null> {
    return this.fill(this.versions, `${image}\u0000${version}`, () => this.store.getVersion(image, version));
  }

  async findMachineByMac(mac: string): Promise<Machine | null> {
    const hit = this.machinesByMac.get(mac);
    if (hit !== undefined) return hit;
    const gen = this.generation;
    const m = await this.store.findMachineByMac(mac);
    if (m !== null && gen === this.generation) {
      if (this.machinesByMac.size >= MAX_MACHINES) {
        this.machinesByMac.clear();
        this.macsById.clear();
      }
      this.machinesByMac.set(mac, m);
      this.macsById.set(m.id, [...(this.macsById.get(m.id) ?? []), mac]);
    }
    return m;
  }
}

function dropPrefix<V>(map: Map<string, V>, image: string): void {
  const prefix = `${image}\u0000`;
  for (const k of map.keys()) if (k.startsWith(prefix)) map.delete(k);
}
