// A tiny netboot image built from the host's Debian packages and cached by its inputs (`kiln demo` and
// the e2e tests boot it): the Debian kernel, a busybox initramfs whose init brings up the NIC and calls
// back Kiln (or boots a live squashfs root), and that squashfs root (busybox plus a shell init that
// calls back from the mounted image).
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { runCommand } from './run-command.js';
import { UDHCPC_SCRIPT } from '../jobs/builders/netboot-initrd.js';

export interface TestImage {
  kernelVersion: string;
  kernel: string;
  initrd: string;
  /** squashfs of the live root; the initramfs fetches it when the kernel has `kiln.rootfs=<url>`. */
  rootfs: string;
}

/** Debian's kernel modules for QEMU's NICs and the live root (all `=m` in the Debian kernel); deps are added. */
const MODULES = ['virtio_pci', 'virtio_net', 'e1000', 'loop', 'squashfs', 'overlay'];
const BUSYBOX = '/bin/busybox';
/** Bump when the build steps change in a way the hashed inputs do not show. */
const BUILD_FORMAT = 1;

// Busybox 1.35 gotchas from the lab: `wget -T` segfaults, and udhcpc needs its script passed with -s.
const INIT = `#!/bin/sh
# Kiln boot image initramfs: NIC up, then call back Kiln (kiln.callback=) or boot the live root (kiln.rootfs=).
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say() { echo "KILN-IMAGE: $*"; }
arg() { tr ' ' '\\n' </proc/cmdline | sed -n "s/^$1=//p" | tail -n 1; }
say "initramfs init at $(cut -d' ' -f1 /proc/uptime) s"
say "cmdline: $(cat /proc/cmdline)"
while read -r m; do insmod "/lib/modules/$m.ko" || say "insmod $m failed"; done </etc/kiln-e2e-modules
CB=$(arg kiln.callback)
ROOTFS=$(arg kiln.rootfs)
die() {
  say "FAILED: $*"
  [ -n "$CB" ] && wget -q -O- "$CB&state=failed" && echo
  echo "KILN-IMAGE-FAILED"
  poweroff -f
}
[ -n "$CB" ] || die "no kiln.callback= on the kernel command line"
IF=""
for i in 1 2 3 4 5 6 7 8 9 10; do
  for n in /sys/class/net/*; do n=\${n##*/}; [ "$n" != lo ] && IF=$n && break; done
  [ -n "$IF" ] && break
  sleep 1
done
[ -n "$IF" ] || die "no network interface"
ip link set lo up
ip link set "$IF" up
udhcpc -i "$IF" -s /etc/udhcpc.script -q -n -t 10 -T 2 || die "no DHCP lease on $IF"
say "$IF mac=$(cat /sys/class/net/$IF/address) address=$(ip -4 -o addr show dev "$IF" | awk '{print $4}')"
if [ -z "$ROOTFS" ]; then
  wget -q -O- "$CB&state=booted" || die "callback to $CB failed"
  echo
  echo "KILN-IMAGE-CALLBACK-OK"
  poweroff -f
fi
say "live root: fetching $ROOTFS"
mount -t tmpfs -o size=90% tmpfs /run
mkdir -p /run/lower /run/rw/upper /run/rw/work /newroot
wget -q -O /run/rootfs.squashfs "$ROOTFS" || die "rootfs download failed"
LOOP=$(losetup -f)
losetup -r "$LOOP" /run/rootfs.squashfs || die "losetup $LOOP failed"
mount -t squashfs -o ro "$LOOP" /run/lower || die "squashfs mount failed"
mount -t overlay overlay -o lowerdir=/run/lower,upperdir=/run/rw/upper,workdir=/run/rw/work /newroot || die "overlay mount failed"
mkdir -p /newroot/run/initramfs
mount --move /run /newroot/run/initramfs || die "moving /run failed"
mount --move /dev /newroot/dev || die "moving /dev failed"
umount /sys /proc
exec switch_root /newroot /sbin/init
`;

const ROOT_INIT = `#!/bin/sh
# Kiln boot image live root's init: checks it runs from the squashfs under a writable overlay, then calls back Kiln.
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
say() { echo "KILN-IMAGE: $*"; }
arg() { tr ' ' '\\n' </proc/cmdline | sed -n "s/^$1=//p" | tail -n 1; }
CB=$(arg kiln.callback)
ROOT=$(awk '$2 == "/" {print $3}' /proc/mounts | tail -n 1)
LOWER=$(awk '$2 == "/run/initramfs/lower" {print $3}' /proc/mounts)
say "live root: pid $$, / is $ROOT, lower is $LOWER, image says: $(cat /etc/kiln-e2e-rootfs)"
STATE=booted
[ "$ROOT" = overlay ] || { say "/ is not the overlay"; STATE=failed; }
[ "$LOWER" = squashfs ] || { say "the lower layer is not the squashfs"; STATE=failed; }
[ -f /etc/kiln-e2e-rootfs ] || { say "not the test image"; STATE=failed; }
echo written >/kiln-e2e-write-test || { say "the overlay is not writable"; STATE=failed; }
wget -q -O- "$CB&state=$STATE" && echo && echo "KILN-IMAGE-LIVE-CALLBACK-OK state=$STATE"
poweroff -f
`;

/** The newest kernel in /boot that has its modules installed, or null. */
export function findTestKernel(): { version: string; path: string; modules: string } | null {
  if (!existsSync('/boot')) return null;
  const versions = readdirSync('/boot')
    .filter((f) => f.startsWith('vmlinuz-'))
    .map((f) => f.slice('vmlinuz-'.length))
    .filter((v) => existsSync(join('/lib/modules', v, 'modules.dep')))
    .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  const version = versions[versions.length - 1];
  return version === undefined ? null : { version, path: join('/boot', `vmlinuz-${version}`), modules: join('/lib/modules', version) };
}

/** Module files (relative to the modules dir) in load order: every module after its dependencies. */
export function resolveModules(modulesDep: string, wanted: readonly string[]): string[] {
  const deps = new Map<string, string[]>();
  const byName = new Map<string, string>();
  for (const line of modulesDep.split('\n')) {
    const [file, rest] = line.split(':');
    if (file === undefined || rest === undefined) continue;
    deps.set(file, rest.trim().split(/\s+/).filter((d) => d !== ''));
    byName.set(moduleName(file), file);
  }
  const order: string[] = [];
  const visit = (file: string) => {
    if (order.includes(file)) return;
    // modules.dep lists the closure with the nearest dependency first; load from the far end.
    for (const d of [...(deps.get(file) ?? [])].reverse()) visit(d);
    order.push(file);
  };
  for (const m of wanted) {
    const file = byName.get(m);
    if (file === undefined) throw new Error(`kernel module ${m} is not in modules.dep (built in? then drop it from the list)`);
    visit(file);
  }
  return order;
}

function moduleName(file: string): string {
  return file.slice(file.lastIndexOf('/') + 1).replace(/\.ko(\.(gz|xz|zst))?$/, '').replace(/-/g, '_');
}

async function readModule(path: string): Promise<Buffer> {
  if (path.endsWith('.ko')) return readFile(path);
  if (path.endsWith('.ko.gz')) return gunzipSync(await readFile(path));
  // busybox insmod takes plain ELF only
  const tool = path.endsWith('.ko.xz') ? 'xz' : 'zstd';
  const out = join(tmpdir(), `kiln-e2e-mod-${randomBytes(6).toString('hex')}.ko`);
  await runCommand('sh', ['-c', `${tool} -dc "$1" > "$2"`, 'sh', path, out]);
  try {
    return await readFile(out);
  } finally {
    await rm(out, { force: true });
  }
}

async function busyboxTree(dir: string, binDirs: readonly string[]): Promise<void> {
  await mkdir(join(dir, 'bin'), { recursive: true });
  await copyFile(BUSYBOX, join(dir, 'bin', 'busybox'));
  await chmod(join(dir, 'bin', 'busybox'), 0o755);
  const applets = (await runCommand(BUSYBOX, ['--list'])).stdout.split('\n').filter((a) => /^[a-z0-9_.[-]+$/.test(a));
  for (const d of binDirs) await mkdir(join(dir, d), { recursive: true });
  for (const a of applets) if (a !== 'busybox') await symlink('busybox', join(dir, 'bin', a));
}

/** Images for other kernels or older harness versions, and builds a killed worker left, go after a week. */
async function pruneCache(cacheDir: string, keep: string): Promise<void> {
  const weekAgo = Date.now() - 7 * 24 * 3600_000;
  for (const name of await readdir(cacheDir)) {
    const p = join(cacheDir, name);
    if (p === keep) continue;
    const s = await stat(p).catch(() => null);
    if (s !== null && s.mtimeMs < weekAgo) await rm(p, { recursive: true, force: true });
  }
}

export function defaultCacheDir(): string {
  return join(tmpdir(), 'kiln-image-cache');
}

/**
 * Builds (or finds in the cache) the test image. Concurrent builders (parallel test files) each build into
 * their own temporary directory and rename it into place; the loser of the race discards its copy.
 */
export async function buildTestImage(cacheDir = defaultCacheDir()): Promise<TestImage> {
  const kernel = findTestKernel();
  if (kernel === null) throw new Error('no kernel in /boot with modules in /lib/modules (install linux-image-amd64)');
  const modulesDep = readFileSync(join(kernel.modules, 'modules.dep'), 'utf8');
  const modules = resolveModules(modulesDep, MODULES);
  const hash = createHash('sha256').update(`format ${BUILD_FORMAT}\n${INIT}\n${UDHCPC_SCRIPT}\n${ROOT_INIT}\n${modules.join('\n')}\n`);
  for (const f of [kernel.path, BUSYBOX, ...modules.map((m) => join(kernel.modules, m))]) hash.update(await readFile(f));
  const key = hash.digest('hex').slice(0, 24);
  const dir = join(cacheDir, `${kernel.version}-${key}`);
  const image: TestImage = { kernelVersion: kernel.version, kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img'), rootfs: join(dir, 'rootfs.squashfs') };
  if (existsSync(join(dir, 'complete'))) return image;

  await mkdir(cacheDir, { recursive: true });
  await pruneCache(cacheDir, dir);
  const work = join(cacheDir, `.build-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const out = join(work, 'out');
    await mkdir(out, { recursive: true });
    await copyFile(kernel.path, join(out, 'vmlinuz'));

    const initrd = join(work, 'initrd');
    await busyboxTree(initrd, ['proc', 'sys', 'dev', 'run', 'tmp', 'newroot', 'etc', 'lib/modules']);
    const names: string[] = [];
    for (const m of modules) {
      names.push(moduleName(m));
      await writeFile(join(initrd, 'lib', 'modules', `${moduleName(m)}.ko`), await readModule(join(kernel.modules, m)));
    }
    await writeFile(join(initrd, 'etc', 'kiln-e2e-modules'), `${names.join('\n')}\n`);
    await writeFile(join(initrd, 'etc', 'udhcpc.script'), UDHCPC_SCRIPT, { mode: 0o755 });
    await writeFile(join(initrd, 'init'), INIT, { mode: 0o755 });
    const files = (await runCommand('find', ['.', '-mindepth', '1'], { cwd: initrd })).stdout;
    const cpio = join(work, 'initrd.cpio');
    await runCommand('cpio', ['--quiet', '-o', '-H', 'newc', '-R', '0:0', '-F', cpio], { cwd: initrd, input: files });
    await writeFile(join(out, 'initrd.img'), gzipSync(await readFile(cpio), { level: 6 }));

    const root = join(work, 'rootfs');
    await busyboxTree(root, ['sbin', 'proc', 'sys', 'dev', 'run', 'tmp', 'etc', 'root']);
    await writeFile(join(root, 'sbin', 'init'), ROOT_INIT, { mode: 0o755 });
    await writeFile(join(root, 'etc', 'kiln-e2e-rootfs'), `kiln e2e live root ${key}\n`);
    // zstd level 3: the lab measured 1 s where the default level 15 took 17 s for a real root.
    await runCommand('mksquashfs', [root, join(out, 'rootfs.squashfs'), '-comp', 'zstd', '-Xcompression-level', '3', '-noappend', '-no-progress', '-all-root']);
    await writeFile(join(out, 'complete'), `${new Date().toISOString()}\n`);
    try {
      await rename(out, dir);
    } catch (err) {
      if (!existsSync(join(dir, 'complete'))) throw err;
    }
    return image;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
