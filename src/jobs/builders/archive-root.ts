// Root filesystems from archives: a rootfs tar unpacked as it is, and an OCI image layout whose layers
// are applied in order with their whiteouts (`.wh.<name>` removes a lower entry, `.wh..wh..opq` empties
// a directory of what lower layers put there). GNU tar does the unpacking (owners, modes, devices,
// xattrs); it refuses `..` members and defers links that point out of the archive, and before each
// layer the parents of its entries are checked so that no entry lands through a link that leaves
// the root (a lower layer's `etc -> /etc` would otherwise let `etc/passwd` overwrite the build host's).
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, realpath, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { KilnError } from '../../core/kiln-error.js';
import { compressionOf } from '../../core/recipes/recipe-inspector.js';
import { TarParser, whiteoutOf, type TarEntry } from '../../core/recipes/tar-parser.js';
import type { Arch } from '../../core/types.js';
import { checkStopped, runTool, type BuildContext } from './build-tools.js';
import { resolveInRoot } from './root-path.js';

/** GNU tar flags that keep what a root filesystem needs: numeric owners, modes, devices, capabilities. */
const EXTRACT_FLAGS = ['--extract', '--numeric-owner', '--same-owner', '--same-permissions', '--xattrs', '--xattrs-include=*', '--delay-directory-restore'];

export async function extractRootfsArchive(ctx: BuildContext, archive: string, root: string): Promise<void> {
  await mkdir(root, { recursive: true });
  await runTool(ctx, 'tar', [...EXTRACT_FLAGS, `--file=${archive}`, `--directory=${root}`]);
}

async function fileHead(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(512);
    const { bytesRead } = await fh.read(buf, 0, 512, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

async function sha256Of(path: string, signal: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), hash, { signal });
  return hash.digest('hex');
}

/** Entries of a plain tar file. */
async function listTar(path: string, signal: AbortSignal): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  const parser = new TarParser((e) => entries.push(e));
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024, signal })) parser.write(chunk as Buffer);
  parser.end();
  return entries;
}

function unsafe(message: string): KilnError {
  return new KilnError('KILN_BUILD_ARCHIVE_UNSAFE', message);
}

/**
 * Refuses a layer that would write through a link leaving the root: on the way to each directory its
 * entries (and hard link targets) go into, every link that exists now must lead where it leads in the
 * image. A link the layer itself replaces by a directory first (GNU tar does that) is no way through.
 */
async function checkLayerPaths(root: string, entries: readonly TarEntry[], layer: number): Promise<void> {
  const dirs = new Set<string>();
  const replaced = new Set(entries.filter((e) => e.type === 'directory').map((e) => e.name));
  for (const e of entries) {
    for (const name of e.type === 'hardlink' ? [e.name, e.linkname] : [e.name]) {
      if (name.split('/').includes('..')) throw unsafe(`layer ${layer}: member ${JSON.stringify(name.slice(0, 200))} has a ".." component`);
      const d = dirname(name);
      if (d !== '.') dirs.add(d);
    }
  }
  for (const d of dirs) {
    let prefix = '';
    for (const part of d.split('/')) {
      prefix = prefix === '' ? part : `${prefix}/${part}`;
      const st = await lstat(join(root, prefix)).catch(() => null);
      if (st === null || (st.isSymbolicLink() && replaced.has(prefix))) break; // tar makes the rest
      if (!st.isSymbolicLink()) continue;
      const host = await realpath(join(root, prefix)).catch(() => null);
      const image = await resolveInRoot(root, prefix).catch(() => null);
      if (host === null || host !== image) {
        throw unsafe(`layer ${layer}: ${JSON.stringify(d.slice(0, 200))} goes through the link /${prefix}, which leads ${host === null ? 'nowhere' : 'out of the image'} on the build host; such layers are not unpacked`);
      }
    }
  }
}

/** Applies a layer's whiteouts to what the lower layers left; the layer's own entries come after. */
async function applyWhiteouts(root: string, entries: readonly TarEntry[]): Promise<number> {
  let n = 0;
  for (const e of entries) {
    const w = whiteoutOf(e.name);
    if (w === null) continue;
    n++;
    if (w.kind === 'whiteout') {
      // The parent as the image sees it; the entry itself is removed, never followed.
      const parent = await resolveInRoot(root, dirname(w.target) === '.' ? '' : dirname(w.target));
      const base = w.target.slice(w.target.lastIndexOf('/') + 1);
      await rm(join(parent, base), { recursive: true, force: true });
    } else {
      const dir = await resolveInRoot(root, w.dir);
      const st = await lstat(dir).catch(() => null);
      if (st === null || !st.isDirectory()) continue;
      for (const child of await readdir(dir)) await rm(join(dir, child), { recursive: true, force: true });
    }
  }
  return n;
}

interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  platform?: { architecture?: string; os?: string };
}

const OCI_ARCH: Record<Arch, string> = { x86_64: 'amd64', aarch64: 'arm64' };
const INDEX_TYPES = ['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'];

function digestHex(d: unknown, what: string): string {
  if (typeof d !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(d)) throw new KilnError('KILN_RECIPE_INVALID', `oci-archive recipe: ${what} has no sha256 digest`);
  return d.slice(7);
}

/** Reads a blob of the layout as JSON after checking its digest. */
async function readBlobJson(layout: string, digest: string, what: string, signal: AbortSignal): Promise<unknown> {
  const hex = digestHex(digest, what);
  const path = join(layout, 'blobs', 'sha256', hex);
  const st = await lstat(path).catch(() => null);
  if (st === null || !st.isFile()) throw new KilnError('KILN_RECIPE_INVALID', `oci-archive recipe: ${what} ${digest} is not in blobs/sha256/`);
  if (st.size > 4 * 1024 * 1024) throw new KilnError('KILN_RECIPE_INVALID', `oci-archive recipe: ${what} is larger than 4 MiB`);
  if ((await sha256Of(path, signal)) !== hex) throw new KilnError('KILN_RECIPE_INVALID', `oci-archive recipe: ${what} does not match its digest ${digest}`);
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch {
    throw new KilnError('KILN_RECIPE_INVALID', `oci-archive recipe: ${what} is not JSON`);
  }
}

/** The image manifest for `arch`: the index's only manifest, or the one whose platform matches (nested indexes followed). */
async function selectManifest(layout: string, arch: Arch, signal: AbortSignal): Promise<{ layers: Descriptor[] }> {
  let index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests?: Descriptor[] };
  for (let depth = 0; depth < 4; depth++) {
    const all = index.manifests ?? [];
    const matching = all.filter((m) => m.platform === undefined || m.platform.architecture === OCI_ARCH[arch]);
    const pick = matching.length === 1 ? matching[0]! : all.length === 1 ? all[0]! : matching.find((m) => m.platform?.architecture === OCI_ARCH[arch]);
    if (pick === undefined) throw new KilnError('KILN_RECIPE_INVALID', `oci-archive recipe: index.json has no image for ${OCI_ARCH[arch]} (it lists ${all.length})`);
    const doc = (await readBlobJson(layout, pick.digest, 'a manifest', signal)) as { mediaType?: string; manifests?: Descriptor[]; layers?: Descriptor[] };
    if (INDEX_TYPES.includes(pick.mediaType ?? '') || INDEX_TYPES.includes(doc.mediaType ?? '') || (doc.manifests !== undefined && doc.layers === undefined)) {
      index = doc;
      continue;
    }
    if (!Array.isArray(doc.layers)) throw new KilnError('KILN_RECIPE_INVALID', 'oci-archive recipe: the image manifest lists no layers');
    return { layers: doc.layers };
  }
  throw new KilnError('KILN_RECIPE_INVALID', 'oci-archive recipe: image indexes nested too deep');
}

/** Unpacks an OCI image layout tarball's image for `arch` into `root`, layer by layer. */
export async function buildOciRoot(ctx: BuildContext, o: { archive: string; arch: Arch; root: string }): Promise<{ layers: number; whiteouts: number }> {
  const layout = join(ctx.workDir, 'oci-layout');
  await mkdir(layout, { recursive: true });
  await mkdir(o.root, { recursive: true });
  // The layout's own files belong to nobody in particular: no owners or devices from it.
  await runTool(ctx, 'tar', ['--extract', '--no-same-owner', '--no-same-permissions', `--file=${o.archive}`, `--directory=${layout}`]);
  const { layers } = await selectManifest(layout, o.arch, ctx.signal);
  let whiteouts = 0;
  for (const [i, layer] of layers.entries()) {
    checkStopped(ctx);
    const n = i + 1;
    const hex = digestHex(layer.digest, `layer ${n}`);
    const blob = join(layout, 'blobs', 'sha256', hex);
    if ((await lstat(blob).catch(() => null))?.isFile() !== true) throw new KilnError('KILN_RECIPE_INVALID', `oci-archive recipe: layer ${n} (${layer.digest}) is not in blobs/sha256/`);
    if ((await sha256Of(blob, ctx.signal)) !== hex) throw new KilnError('KILN_RECIPE_INVALID', `oci-archive recipe: layer ${n} does not match its digest ${layer.digest}`);
    // Layers are read twice (listed, then unpacked): decompressed once to a plain tar.
    const plain = join(ctx.workDir, `layer-${n}.tar`);
    const compression = compressionOf(await fileHead(blob));
    if (compression === 'gzip') await pipeline(createReadStream(blob), createGunzip(), createWriteStream(plain), { signal: ctx.signal });
    else if (compression === 'zstd') await runTool(ctx, 'zstd', ['-d', '-q', '-f', '-o', plain, blob]);
    else if (compression === 'none') await pipeline(createReadStream(blob), createWriteStream(plain), { signal: ctx.signal });
    else throw new KilnError('KILN_RECIPE_INVALID', `oci-archive recipe: layer ${n} is ${compression ?? 'not a tar'}; OCI layers are tar, tar+gzip or tar+zstd`);
    let entries: TarEntry[];
    try {
      entries = await listTar(plain, ctx.signal);
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      throw new KilnError('KILN_RECIPE_INVALID', `oci-archive recipe: layer ${n}: ${(err as Error).message}`);
    }
    await checkLayerPaths(o.root, entries, n);
    const w = await applyWhiteouts(o.root, entries);
    whiteouts += w;
    ctx.log.line(`[build] layer ${n}/${layers.length} ${layer.digest}: ${entries.length} entries, ${w} whiteouts`);
    await runTool(ctx, 'tar', [...EXTRACT_FLAGS, '--wildcards', '--exclude=.wh.*', `--file=${plain}`, `--directory=${o.root}`], { quiet: true });
    await rm(plain, { force: true });
    ctx.progress(5 + Math.round((60 * n) / layers.length));
  }
  await rm(layout, { recursive: true, force: true });
  return { layers: layers.length, whiteouts };
}
