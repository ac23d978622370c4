// Root filesystems from a kiwi-ng description (Cray IMS's recipe format): the tarball is unpacked and
// `kiwi-ng system prepare` installs the image tree (bootstrap, packages, users, config.sh). Kiln packages
// that tree itself like every other build (squashfs zstd, kernel from /boot, kiln-live initrd): kiwi's
// own `system build` took 630 s in the lab, 5 min of it an xz squashfs. Debian's kiwi drives apt
// repositories (`packagemanager apt`, repositories of type apt-deb); zypper or dnf descriptions need
// those tools on the worker.
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError } from '../../core/kiln-error.js';
import { kiwiDescriptionDir } from '../../core/recipes/recipe-inspector.js';
import { runTool, type BuildContext } from './build-tools.js';

/** Where the description is in the unpacked archive: the top, or its single top directory. */
async function findDescription(dir: string): Promise<string> {
  const names: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isFile()) names.push(e.name);
    else if (e.isDirectory()) for (const f of await readdir(join(dir, e.name)).catch(() => [] as string[])) names.push(`${e.name}/${f}`);
  }
  const found = kiwiDescriptionDir(names);
  if (found === null) throw new KilnError('KILN_RECIPE_INVALID', 'kiwi-ng recipe: no config.xml (or one *.kiwi file) at the top of the archive or in its single top directory');
  return join(dir, found);
}

export async function buildKiwiRoot(ctx: BuildContext, o: { archive: string; root: string; cacheDir: string | null; imageInitrd: boolean }): Promise<void> {
  const desc = join(ctx.workDir, 'kiwi-description');
  await mkdir(desc, { recursive: true });
  await runTool(ctx, 'tar', ['--extract', '--no-same-owner', `--file=${o.archive}`, `--directory=${desc}`]);
  const description = await findDescription(desc);
  const global = o.cacheDir !== null ? [`--shared-cache-dir=${join(o.cacheDir, 'kiwi')}`] : [];
  // INITRD=No as for debootstrap: the kernel package makes no initrd when Kiln generates its own.
  await runTool(ctx, 'kiwi-ng', [...global, 'system', 'prepare', `--description=${description}`, `--root=${o.root}`], { env: { INITRD: o.imageInitrd ? 'Yes' : 'No' } });
  // What `kiwi-ng system create` would clear away before packaging: its copy of the description.
  for (const f of ['image', '.kconfig', '.profile']) await rm(join(o.root, f), { recursive: true, force: true });
  const cache = join(o.root, 'var/cache/kiwi');
  if ((await stat(cache).catch(() => null))?.isDirectory() === true && (await readdir(cache)).length === 0) await rm(cache, { recursive: true, force: true });
}
