// `image-build`: a recipe in, a new image version out. Stages use Cray IMS's names: fetching_recipe
// (the request checked again, the pinned recipe content copied into the work directory),
// building_image (a root filesystem from debootstrap, a rootfs tar, an OCI layout or kiwi-ng),
// packaging_artifacts (kernel and initrd, a zstd squashfs of the root, uploads, manifest, and the
// version registered last). Runs as root in the job's private work directory.
import { createWriteStream } from 'node:fs';
import { readFile, realpath, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Type } from 'typebox';
import { KilnError } from '../../core/kiln-error.js';
import { parseDebootstrapSpec } from '../../core/recipes/debootstrap-spec.js';
import { MANIFEST_TYPES } from '../../core/recipes/image-manifest.js';
import { RECIPE_KINDS, type RecipeKind } from '../../core/recipes/recipe.js';
import { RecipeService } from '../../core/services/recipe-service.js';
import type { Arch } from '../../core/types.js';
import type { JobTypeDeps } from '../job-registry.js';
import { defineJobType, type JobContext } from '../job-types.js';
import { extractRootfsArchive, buildOciRoot } from './archive-root.js';
import { findBootFiles } from './boot-files.js';
import { runTool } from './build-tools.js';
import { buildDebootstrapRoot } from './debootstrap-root.js';
import { buildKiwiRoot } from './kiwi-root.js';
import { buildNetbootInitrd } from './netboot-initrd.js';
import { publishBuild, type BuiltFile } from './publish-build.js';

/** How this worker builds (wired from the server's settings; every field has a default). */
export interface ImageBuildSettings {
  /**
   * Downloaded packages kept for the next builds (debootstrap's --cache-dir, kiwi's shared cache).
   * Default: `.cache` in the worker's work root (jobs.workDir, else <dataDir>/work); null: no cache.
   */
  cacheDir?: string | null | undefined;
  /** A statically linked busybox for the kiln-live initrd (Debian's busybox-static). */
  busybox?: string | undefined;
}

const Name = Type.String({ minLength: 1, maxLength: 63 });
export const ImageBuildInput = Type.Object(
  {
    recipe: Name,
    recipeSha256: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$', description: 'the recipe content to build (pinned when the build was asked for); default: the current one' })),
    image: Name,
    version: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'default: the next number' })),
    arch: Type.Optional(Type.Union([Type.Literal('x86_64'), Type.Literal('aarch64')])),
    promote: Type.Optional(Type.String({ minLength: 1, maxLength: 63, description: 'a channel moved to the new version when the build succeeds' })),
    cmdline: Type.Optional(Type.String({ maxLength: 4096, description: "the version's default kernel command line" })),
    initrd: Type.Optional(Type.Union([Type.Literal('kiln-live'), Type.Literal('image')], { description: "kiln-live (default): Kiln's generated initrd that boots the squashfs over HTTP; image: the image's own /boot initrd" })),
    initrdModules: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 64, description: 'kernel modules added to the kiln-live initrd' })),
  },
  { additionalProperties: false },
);

/** The artifact names a version gets; the kernel's follows IMS's per-arch default. */
const KERNEL_NAME: Record<Arch, string> = { x86_64: 'vmlinuz', aarch64: 'Image' };
const HOST_ARCH: Partial<Record<NodeJS.Architecture, Arch>> = { x64: 'x86_64', arm64: 'aarch64' };

export interface ImageBuildResult {
  image: string;
  version: string;
  arch: Arch;
  kernelRelease: string;
  manifest: string;
  promoted: string | null;
  artifacts: { name: string; role: string; sha256: string; size: number }[];
}

export function imageBuildJob(deps: JobTypeDeps & { builds?: ImageBuildSettings | undefined }) {
  const recipes = new RecipeService(deps.store, deps.blobs, deps.clock, deps.ids);
  const settings = deps.builds ?? {};
  return defineJobType({
    type: 'image-build',
    description: 'Builds a new image version from a recipe (debootstrap, rootfs-archive, oci-archive, kiwi-ng): kernel, initrd, squashfs root, manifest',
    inputSchema: ImageBuildInput,
    // POST /recipes/{name}/builds checks the request first; POST /jobs works too (checked when it starts).
    apiCreatable: true,
    timeoutSeconds: 3600,
    // A second attempt only when the worker died under the first.
    maxAttempts: 2,
    async run(ctx): Promise<ImageBuildResult> {
      return runImageBuild(ctx, deps, recipes, settings);
    },
  });
}

async function runImageBuild(
  ctx: JobContext<{ recipe: string; image: string; recipeSha256?: string; version?: string; arch?: Arch; promote?: string; cmdline?: string; initrd?: 'kiln-live' | 'image'; initrdModules?: string[] }>,
  deps: JobTypeDeps,
  recipes: RecipeService,
  settings: ImageBuildSettings,
): Promise<ImageBuildResult> {
  ctx.stage('fetching_recipe');
  const plan = await recipes.planBuild(ctx.input);
  const hostArch = HOST_ARCH[process.arch];
  if (process.getuid?.() !== 0) throw new KilnError('KILN_BUILD_UNSUPPORTED', 'image builds run as root (debootstrap, chroot, device nodes and owners in the root filesystem); this worker is not');
  if (hostArch !== plan.arch) throw new KilnError('KILN_BUILD_UNSUPPORTED', `this worker builds ${hostArch ?? process.arch} images; recipe ${plan.recipe} is for ${plan.arch} (run a worker on such a host, with jobs.types image-build)`);
  const work = await realpath(ctx.workDir);
  const cacheDir = settings.cacheDir === undefined ? join(dirname(work), '.cache') : settings.cacheDir;
  const { recipe, body } = await recipes.read(plan.recipe, plan.recipeSha256);
  const recipeFile = join(work, 'recipe');
  await pipeline(body, createWriteStream(recipeFile), { signal: ctx.signal });
  ctx.log.line(`[build] recipe ${recipe.name} (${recipe.kind}, ${plan.arch}) content ${plan.recipeSha256}; image ${plan.image}${plan.version !== undefined ? ` version ${plan.version}` : ''}; initrd ${plan.initrd}`);
  ctx.progress(5);

  ctx.stage('building_image');
  const root = join(work, 'rootfs');
  const imageInitrd = plan.initrd === 'image';
  const kind: RecipeKind = recipe.kind;
  switch (kind) {
    case 'debootstrap': {
      const spec = parseDebootstrapSpec(await readFile(recipeFile, 'utf8'), plan.arch);
      await buildDebootstrapRoot(ctx, { spec, arch: plan.arch, root, cacheDir, imageInitrd });
      break;
    }
    case 'rootfs-archive':
      await extractRootfsArchive(ctx, recipeFile, root);
      break;
    case 'oci-archive': {
      const r = await buildOciRoot(ctx, { archive: recipeFile, arch: plan.arch, root });
      ctx.log.line(`[build] applied ${r.layers} layers (${r.whiteouts} whiteouts)`);
      break;
    }
    case 'kiwi-ng':
      await buildKiwiRoot(ctx, { archive: recipeFile, root, cacheDir, imageInitrd });
      break;
    default: {
      const never: never = kind;
      throw new KilnError('KILN_RECIPE_INVALID', `recipe kind ${String(never)}: want one of ${RECIPE_KINDS.join(', ')}`);
    }
  }
  // An archive recipe may be as big as the root it held: room for the squashfs.
  await rm(recipeFile, { force: true });
  ctx.progress(70);

  ctx.stage('packaging_artifacts');
  const boot = await findBootFiles(root, plan.arch);
  ctx.log.line(`[build] kernel ${boot.release}: /${boot.kernel.slice(root.length + 1)}${boot.modulesDir !== null ? `, modules /${boot.modulesDir.slice(root.length + 1)}` : ', no modules'}${boot.initrd !== null ? `, initrd /${boot.initrd.slice(root.length + 1)}` : ''}`);
  const files: BuiltFile[] = [{ path: boot.kernel, name: KERNEL_NAME[plan.arch], role: 'kernel', type: MANIFEST_TYPES.kernel }];
  if (imageInitrd) {
    if (boot.initrd === null) throw new KilnError('KILN_BUILD_FAILED', `initrd image: the image has no initrd for kernel ${boot.release} in /boot; build with initrd kiln-live, or install an initrd generator (dracut, initramfs-tools)`);
    files.push({ path: boot.initrd, name: 'initrd.img', role: 'initrd', type: MANIFEST_TYPES.initrd });
  } else {
    const out = join(work, 'initrd.img');
    const r = await buildNetbootInitrd(ctx, { root, boot, arch: plan.arch, busybox: settings.busybox ?? '/bin/busybox', extraModules: plan.initrdModules ?? [], out });
    ctx.log.line(`[build] kiln-live initrd with ${r.modules.length} modules: ${r.modules.join(' ') || 'none'}`);
    files.push({ path: out, name: 'initrd.img', role: 'initrd', type: MANIFEST_TYPES.initrd });
  }
  ctx.progress(75);
  const squashfs = join(work, 'rootfs.squashfs');
  // zstd level 3: the lab measured about 1 s for a Debian minbase where the default level 15 took 17 s and xz 21 s.
  await runTool(ctx, 'mksquashfs', [root, squashfs, '-comp', 'zstd', '-Xcompression-level', '3', '-noappend', '-no-progress', '-quiet']);
  files.push({ path: squashfs, name: 'rootfs.squashfs', role: 'rootfs', type: MANIFEST_TYPES.rootfs });
  ctx.progress(85);

  const published = await publishBuild(
    deps,
    {
      image: plan.image,
      version: plan.version,
      arch: plan.arch,
      cmdline: plan.cmdline ?? '',
      promote: plan.promote,
      actor: ctx.job.createdBy ?? 'image-build',
      imageDescription: `built from recipe ${recipe.name}`,
      metadata: {
        build: { job: ctx.job.id, recipe: recipe.name, recipeKind: recipe.kind, recipeSha256: plan.recipeSha256, kernelRelease: boot.release, initrd: plan.initrd },
      },
      files,
    },
    ctx.signal,
    (line) => ctx.log.line(line),
  );
  ctx.progress(100);
  const v = published.version;
  return {
    image: v.image,
    version: v.version,
    arch: v.arch,
    kernelRelease: boot.release,
    manifest: published.manifestSha256,
    promoted: published.promoted,
    artifacts: v.artifacts.map((a) => ({ name: a.name, role: a.role, sha256: a.sha256, size: a.size })),
  };
}
