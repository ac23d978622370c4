// ncore images onto Kiln: an ncore image (ImageTag, ImageType) is channel `tag` of Kiln image `type`,
// its ImageName the version that channel points at, its ImageCmdline the kernel args of the profile
// `ncore.<type>.<tag>` that boots it, and its ImageBucket a label on the Kiln image. Assigning an
// ncore image to a MAC pins that profile to the machine, so Kiln's own boot path agrees with ncore's.
import type { Services } from '../../api/services.js';
import type { ArtifactLinks } from '../../boot/http/artifact-links.js';
import { KilnError } from '../../core/kiln-error.js';
import type { ImageVersion, Machine, Profile } from '../../core/types.js';
import { validateKernelArg, validateName, validateVersion } from '../../core/validate.js';
import type { NcoreMenuImage, SchemeUrls } from './ncore-menu.js';

export const BUCKET_LABEL = 'ncore/bucket';

/** An ncore-shaped failure: the status and the `errors` list the original answers with. */
export class NcoreError extends Error {
  constructor(
    readonly status: number,
    readonly errors: string[],
  ) {
    super(errors.join('; '));
  }
}

export interface NcoreKey {
  tag: string;
  type: string;
}

/** ncore's IpxeConfig, field for field. */
export interface IpxeConfig {
  ImageName: string;
  ImageBucket: string;
  ImageTag: string;
  ImageType: string;
  ImageInitrdUrlHttp: string;
  ImageInitrdUrlHttps: string;
  ImageKernelUrlHttp: string;
  ImageKernelUrlHttps: string;
  ImageRootFsUrlHttp: string;
  ImageRootFsUrlHttps: string;
  ImageCmdline: string;
  Hostname?: string;
}

export interface IpxeDbConfig {
  ImageName: string;
  ImageBucket: string;
  ImageTag: string;
  ImageType: string;
  ImageCmdline: string;
}

/** Where an ncore image stands in Kiln. */
export interface NcoreImage {
  key: NcoreKey;
  profile: Profile | null;
  version: ImageVersion;
  bucket: string;
}

export function profileName(key: NcoreKey): string {
  return `ncore.${key.type}.${key.tag}`;
}

/**
 * Tag and type become a Kiln image and channel name, so they follow Kiln's name rules (lower-case
 * DNS-label-like, no dots: the profile name joins them with dots). ncore took any non-empty text.
 */
export function checkKey(key: NcoreKey): NcoreKey {
  for (const [field, v] of [['ImageTag', key.tag], ['ImageType', key.type]] as const) {
    let ok = !v.includes('.');
    try {
      validateName(v);
    } catch {
      ok = false;
    }
    if (!ok) throw new NcoreError(400, [`invalid ${field} ${JSON.stringify(v.slice(0, 80))}: Kiln needs lower-case letters, digits and '-' (1-63 characters)`]);
  }
  return key;
}

function swapScheme(url: string, to: 'http' | 'https'): string {
  return url.replace(/^https?:/, `${to}:`);
}

export class NcoreImages {
  constructor(
    private readonly s: Services,
    private readonly links: ArtifactLinks,
    /** Reported as ImageBucket when an image has no bucket label: where Kiln keeps the bytes. */
    private readonly defaultBucket: string,
  ) {}

  /** Every (tag, type) Kiln serves as an ncore image: channels of live images. */
  async keys(): Promise<NcoreKey[]> {
    const out: NcoreKey[] = [];
    for (const image of await this.s.images.list({ deleted: false })) {
      for (const c of await this.s.images.listChannels(image.name)) out.push({ tag: c.name, type: image.name });
    }
    return out;
  }

  async available(): Promise<string> {
    return `Available Images: [${(await this.keys()).map((k) => `{${k.tag} ${k.type}}`).join(' ')}]`;
  }

  /** The ncore image (tag, type), or null when Kiln has no such channel. */
  async find(key: NcoreKey): Promise<NcoreImage | null> {
    const image = await this.s.images.get(key.type).catch(notFound);
    if (image === null || image.deletedAt !== null) return null;
    const channel = await this.s.images.getChannel(key.type, key.tag).catch(notFound);
    if (channel === null) return null;
    const version = await this.s.images.getVersion(key.type, channel.channel.version);
    return { key, profile: await this.profileFor(key), version, bucket: image.labels[BUCKET_LABEL] ?? this.defaultBucket };
  }

  /** The profile that boots (tag, type): `ncore.<type>.<tag>`, else any profile naming that channel. */
  async profileFor(key: NcoreKey): Promise<Profile | null> {
    const own = await this.s.profiles.get(profileName(key)).catch(notFound);
    if (own !== null) return own;
    return (await this.s.profiles.list()).find((p) => p.image.image === key.type && p.image.channel === key.tag) ?? null;
  }

  /** PUT /ipxe/images/: points channel `tag` of image `type` at version ImageName and records cmdline and bucket. */
  async register(db: IpxeDbConfig, actor: string): Promise<NcoreImage> {
    const key = checkKey({ tag: db.ImageTag, type: db.ImageType });
    let version: string;
    let kernelArgs: string[];
    try {
      version = validateVersion(db.ImageName);
      kernelArgs = db.ImageCmdline.split(/\s+/).filter((a) => a !== '').map((a) => validateKernelArg(a));
    } catch (err) {
      throw new NcoreError(400, [(err as Error).message]);
    }
    const image = await this.s.images.get(key.type).catch(notFound);
    if (image === null || image.deletedAt !== null || (await this.s.images.getVersion(key.type, version).catch(notFound)) === null) {
      throw new NcoreError(400, [
        `Image version doesn't exist: Kiln image ${key.type} has no version ${version}`,
        `push it first: kiln image push ${key.type} ${version} --kernel vmlinuz --initrd initrd.img --rootfs rootfs`,
      ]);
    }
    if (!/^[A-Za-z0-9._-]{0,63}$/.test(db.ImageBucket)) throw new NcoreError(400, [`invalid image_bucket ${JSON.stringify(db.ImageBucket.slice(0, 80))}`]);
    if ((await this.s.images.getChannel(key.type, key.tag).catch(notFound)) !== null) {
      // ncore answers a duplicate primary key with 500 and this text; scripts may look for it.
      throw new NcoreError(500, ['UniqueViolation - (image_tag, image_type) exists']);
    }
    await this.s.images.promote(key.type, key.tag, version, actor, undefined);
    try {
      const name = profileName(key);
      const input = { image: { image: key.type, channel: key.tag }, kernelArgs, description: `ncore image tag ${key.tag}, type ${key.type}` };
      if ((await this.s.profiles.get(name).catch(notFound)) === null) await this.s.profiles.create({ name, ...input });
      else await this.s.profiles.replace(name, input, undefined);
      await this.s.images.update(key.type, { labels: { ...image.labels, [BUCKET_LABEL]: db.ImageBucket } }, undefined);
    } catch (err) {
      await this.s.images.deleteChannel(key.type, key.tag).catch(() => undefined);
      throw err;
    }
    return (await this.find(key))!;
  }

  /** DELETE /ipxe/images/: machines pinned to it fall back to their groups; subnet groups must be moved first. */
  async remove(key: NcoreKey): Promise<IpxeDbConfig> {
    const found = await this.find(key);
    if (found === null) throw new NcoreError(400, ["Image doesn't exist", await this.available()]);
    const db = this.dbConfig(found);
    const profile = found.profile;
    if (profile !== null && profile.name === profileName(key)) {
      const groups = (await this.s.groups.list()).filter((g) => g.profile === profile.name).map((g) => g.name);
      if (groups.length > 0) throw new NcoreError(400, [`image is the default of group(s) ${groups.join(', ')}; point them elsewhere first`]);
      for (;;) {
        try {
          await this.s.profiles.delete(profile.name, undefined);
          break;
        } catch (err) {
          const machines = err instanceof KilnError && err.code === 'KILN_PROFILE_IN_USE' ? (err.details?.machines as string[] | undefined) : undefined;
          if (machines === undefined || machines.length === 0) throw err;
          for (const id of machines) {
            const m = await this.s.machines.get(id);
            if (m.profile === profile.name) await this.s.machines.assign(id, null, undefined);
            if (m.nextBoot === profile.name) await this.s.machines.setNextBoot(id, null, undefined);
          }
        }
      }
    }
    await this.s.images.deleteChannel(key.type, key.tag);
    return db;
  }

  /** The ncore image a machine is pinned to (its assigned profile's channel), or null. */
  async ofMachine(machine: Machine): Promise<NcoreImage | null> {
    if (machine.profile === null) return null;
    const p = await this.s.profiles.get(machine.profile).catch(notFound);
    if (p?.image.channel === undefined) return null;
    const found = await this.find({ tag: p.image.channel, type: p.image.image });
    // The machine boots its own profile: its kernel args are the machine's ImageCmdline.
    return found === null ? null : { ...found, profile: p };
  }

  dbConfig(i: NcoreImage): IpxeDbConfig {
    return { ImageName: i.version.version, ImageBucket: i.bucket, ImageTag: i.key.tag, ImageType: i.key.type, ImageCmdline: cmdlineOf(i.version, i.profile) };
  }

  async config(base: string, i: NcoreImage, mac: string | null): Promise<IpxeConfig> {
    const u = await this.urls(base, i.version, mac);
    return {
      ImageName: i.version.version,
      ImageBucket: i.bucket,
      ImageTag: i.key.tag,
      ImageType: i.key.type,
      ImageInitrdUrlHttp: u.initrd?.http ?? '',
      ImageInitrdUrlHttps: u.initrd?.https ?? '',
      ImageKernelUrlHttp: u.kernel?.http ?? '',
      ImageKernelUrlHttps: u.kernel?.https ?? '',
      ImageRootFsUrlHttp: u.rootfs?.http ?? '',
      ImageRootFsUrlHttps: u.rootfs?.https ?? '',
      ImageCmdline: cmdlineOf(i.version, i.profile),
    };
  }

  async menuImage(base: string, version: ImageVersion, profile: Profile | null, mac: string): Promise<NcoreMenuImage | null> {
    const u = await this.urls(base, version, mac);
    if (u.kernel === null) return null;
    return { name: version.version, cmdline: cmdlineOf(version, profile), kernel: u.kernel, initrd: u.initrd, rootfs: u.rootfs };
  }

  /** Presigned (S3) or Kiln-signed URLs for kernel, first initrd and rootfs; HTTP and HTTPS differ only in scheme, as in ncore. */
  async urls(base: string, version: ImageVersion, mac: string | null): Promise<Record<'kernel' | 'initrd' | 'rootfs', SchemeUrls | null>> {
    const one = async (role: 'kernel' | 'initrd' | 'rootfs'): Promise<SchemeUrls | null> => {
      const a = version.artifacts.find((x) => x.role === role);
      if (a === undefined) return null;
      const url = await this.links.url(base, a, mac);
      return { http: swapScheme(url, 'http'), https: swapScheme(url, 'https') };
    };
    return { kernel: await one('kernel'), initrd: await one('initrd'), rootfs: await one('rootfs') };
  }

  /** Versions named `name` in any live image (the /ipxe/s3/<imageName> lookup). */
  async versionNamed(name: string): Promise<ImageVersion | null> {
    for (const image of await this.s.images.list({ deleted: false })) {
      const v = await this.s.images.getVersion(image.name, name).catch(notFound);
      if (v !== null) return v;
    }
    return null;
  }
}

export function cmdlineOf(version: ImageVersion, profile: Profile | null): string {
  return [version.cmdline.trim(), ...(profile?.kernelArgs ?? [])].filter((a) => a !== '').join(' ');
}

/** A lookup that may miss: not-found (or an invalid name, which cannot exist) becomes null. */
function notFound(err: unknown): null {
  if (err instanceof KilnError && (err.code.endsWith('_NOT_FOUND') || err.code === 'KILN_NAME_INVALID')) return null;
  throw err;
}
