// The `kiln-live` initrd a build generates for its version: a static busybox, the image's own kernel
// modules for common NICs and for loop/squashfs/overlay, and an /init that gets an address by DHCP,
// fetches the squashfs named by `kiln.rootfs=` (Kiln's boot script adds it for a version with a rootfs
// artifact), mounts it read-only under a tmpfs overlay and switch_roots into the image's init. The
// approach of src/demo/build-boot-image.ts, made for real images: /run is handed over as dracut does,
// `init=` is honoured, and failures report `state=failed` to `kiln.callback=` and reboot.
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip, gunzipSync } from 'node:zlib';
import { KilnError } from '../../core/kiln-error.js';
import type { Arch } from '../../core/types.js';
import type { BootFiles } from './boot-files.js';
import { runTool, type BuildContext } from './build-tools.js';
import { resolveInRoot } from './root-path.js';

/**
 * Modules loaded when the image has them (missing ones are built in or absent): virtual and common
 * server NICs, then what the live root needs. Builds may add more (`initrdModules`).
 */
export const DEFAULT_INITRD_MODULES = [
  'virtio_pci', 'virtio_net', 'e1000', 'e1000e', 'igb', 'igc', 'ixgbe', 'i40e', 'ice', 'bnxt_en', 'tg3', 'r8169', 'vmxnet3', 'mlx4_en', 'mlx5_core',
  'loop', 'squashfs', 'overlay',
] as const;

// Busybox 1.35 (Debian bookworm): `wget -T` crashes, and udhcpc needs its script given with -s.
export const NETBOOT_INIT = `#!/bin/sh
# Kiln live initrd: DHCP, fetch the squashfs root (kiln.rootfs=<url>), mount it under a tmpfs overlay, switch_root.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say() { echo "kiln-initrd: $*" >/dev/console 2>/dev/null || echo "kiln-initrd: $*"; }
arg() { tr ' ' '\\n' </proc/cmdline | sed -n "s/^$1=//p" | tail -n 1; }
CB=$(arg kiln.callback)
ROOTFS=$(arg kiln.rootfs)
INIT=$(arg init)
IF=""
die() {
  say "FAILED: $*"
  [ -n "$CB" ] && [ -n "$IF" ] && wget -q -O- "$CB&state=failed" >/dev/null 2>&1
  if [ "$(arg kiln.shell)" = 1 ]; then say "kiln.shell=1: a shell; exit reboots"; sh; fi
  say "rebooting in 10 s"
  sleep 10
  reboot -f
}
say "started at $(cut -d' ' -f1 /proc/uptime) s"
while read -r m; do insmod "/lib/modules/$m.ko" 2>/dev/null || say "module $m did not load"; done </etc/kiln-modules
[ -n "$ROOTFS" ] || die "no kiln.rootfs= on the kernel command line (does the version have a rootfs artifact?)"
ip link set lo up
for i in 1 2 3 4 5 6 7 8 9 10; do
  for n in /sys/class/net/*; do
    n=\${n##*/}
    [ "$n" = lo ] && continue
    ip link set "$n" up 2>/dev/null
    if udhcpc -i "$n" -s /etc/udhcpc.script -q -n -t 4 -T 2 >/dev/null 2>&1; then IF=$n; break 2; fi
  done
  sleep 1
done
[ -n "$IF" ] || die "no DHCP lease on any interface"
say "$IF $(cat /sys/class/net/$IF/address) $(ip -4 -o addr show dev "$IF" | awk '{print $4}')"
mount -t tmpfs -o mode=0755,size=95% tmpfs /run || die "tmpfs on /run failed"
mkdir -p /run/initramfs/lower /run/initramfs/rw/upper /run/initramfs/rw/work /newroot
ok=""
for i in 1 2 3; do
  say "fetching the root filesystem (try $i)"
  if wget -q -O /run/initramfs/rootfs.squashfs "$ROOTFS"; then ok=1; break; fi
  sleep 2
done
[ -n "$ok" ] || die "downloading the root filesystem failed"
LOOP=$(losetup -f)
losetup -r "$LOOP" /run/initramfs/rootfs.squashfs || die "losetup $LOOP failed"
mount -t squashfs -o ro "$LOOP" /run/initramfs/lower || die "mounting the squashfs failed"
mount -t overlay overlay -o lowerdir=/run/initramfs/lower,upperdir=/run/initramfs/rw/upper,workdir=/run/initramfs/rw/work /newroot || die "mounting the overlay failed"
mkdir -p /newroot/dev /newroot/proc /newroot/sys /newroot/run /newroot/tmp
q() { printf "'%s'" "$(printf %s "$1" | sed "s/'/'\\\\\\\\''/g")"; }
{ echo "KILN_CALLBACK=$(q "$CB")"; echo "KILN_ROOTFS=$(q "$ROOTFS")"; echo "KILN_INTERFACE=$(q "$IF")"; } >/run/initramfs/kiln.env
if [ -z "$INIT" ]; then
  for p in /sbin/init /usr/sbin/init /lib/systemd/systemd /usr/lib/systemd/systemd; do
    if [ -e "/newroot$p" ] || [ -L "/newroot$p" ]; then INIT=$p; break; fi
  done
fi
[ -n "$INIT" ] || die "the image has no /sbin/init (install systemd-sysv, or pass init=)"
say "switching to the image's $INIT at $(cut -d' ' -f1 /proc/uptime) s"
# /run goes along whole (dracut does the same): systemd keeps it, and the squashfs and the overlay's upper layer live there.
mount --move /run /newroot/run || die "moving /run failed"
mount --move /dev /newroot/dev || die "moving /dev failed"
umount /sys /proc
exec switch_root /newroot "$INIT"
`;

/** busybox udhcpc's hook: configures the address, default route and resolvers it was given (also used by `kiln demo`). */
export const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/\${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route add default via "\${router%% *}" dev "$interface"
    : >/etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
    ;;
esac
exit 0
`;

const ELF_MACHINE: Record<Arch, number> = { x86_64: 0x3e, aarch64: 0xb7 };

/** A busybox the initrd can run: a statically linked ELF for `arch` (Debian's busybox-static). */
export async function checkStaticBusybox(path: string, arch: Arch): Promise<void> {
  const unusable = (why: string) => new KilnError('KILN_BUILD_UNSUPPORTED', `${path} ${why}; the kiln-live initrd needs a statically linked busybox for ${arch} (apt-get install busybox-static)`);
  let head: Buffer;
  try {
    head = await readFile(path);
  } catch {
    throw unusable('is missing');
  }
  if (head.length < 64 || head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2) throw unusable('is not a 64-bit ELF executable');
  if (head.readUInt16LE(0x12) !== ELF_MACHINE[arch]) throw unusable(`is built for another architecture`);
  const phoff = Number(head.readBigUInt64LE(0x20));
  const phentsize = head.readUInt16LE(0x36);
  const phnum = head.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) if (head.readUInt32LE(phoff + i * phentsize) === 3) throw unusable('is dynamically linked'); // PT_INTERP
}

function moduleName(file: string): string {
  return file.slice(file.lastIndexOf('/') + 1).replace(/\.ko(\.(gz|xz|zst))?$/, '').replace(/-/g, '_');
}

/**
 * Module files (relative to the modules directory) in load order, dependencies first. Wanted modules
 * modules.dep does not list are built in or absent: they are reported, not an error.
 */
export function orderModules(modulesDep: string, wanted: readonly string[]): { files: string[]; absent: string[] } {
  const deps = new Map<string, string[]>();
  const byName = new Map<string, string>();
  for (const line of modulesDep.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const file = line.slice(0, colon).trim();
    deps.set(file, line.slice(colon + 1).trim().split(/\s+/).filter((d) => d !== ''));
    byName.set(moduleName(file), file);
  }
  const files: string[] = [];
  const absent: string[] = [];
  const visit = (file: string, depth: number) => {
    if (files.includes(file) || depth > 64) return;
    // modules.dep lists the whole closure, nearest dependency first: load from the far end.
    for (const d of [...(deps.get(file) ?? [])].reverse()) visit(d, depth + 1);
    files.push(file);
  };
  for (const m of wanted) {
    const file = byName.get(m.replace(/-/g, '_'));
    if (file === undefined) absent.push(m);
    else visit(file, 0);
  }
  return { files, absent };
}

async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of (await readdir(d, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      out.push(relative(dir, p));
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return out;
}

export interface NetbootInitrdResult {
  /** Module names in the initrd, in load order. */
  modules: string[];
  /** Asked-for modules the image does not have as files (built in, or not there at all). */
  absent: string[];
}

/** Writes the kiln-live initrd (gzip'd newc cpio) for the kernel in `boot` to `out`. */
export async function buildNetbootInitrd(
  ctx: BuildContext,
  opts: { root: string; boot: BootFiles; arch: Arch; busybox: string; extraModules: readonly string[]; out: string },
): Promise<NetbootInitrdResult> {
  await checkStaticBusybox(opts.busybox, opts.arch);
  const dir = join(ctx.workDir, 'initrd');
  for (const d of ['bin', 'dev', 'etc', 'lib/modules', 'newroot', 'proc', 'run', 'sys', 'tmp']) await mkdir(join(dir, d), { recursive: true });
  await copyFile(opts.busybox, join(dir, 'bin', 'busybox'));
  await chmod(join(dir, 'bin', 'busybox'), 0o755);
  // Every applet as a link in /bin: a kiln.shell=1 rescue shell has the whole toolbox.
  await runTool(ctx, 'chroot', [dir, '/bin/busybox', '--install', '-s', '/bin'], { quiet: true });

  const wanted = [...DEFAULT_INITRD_MODULES, ...opts.extraModules];
  const names: string[] = [];
  let absent: string[] = [...wanted];
  if (opts.boot.modulesDir !== null) {
    const depFile = join(opts.boot.modulesDir, 'modules.dep');
    const modulesDep = await readFile(depFile, 'utf8').catch(() => '');
    if (modulesDep === '') ctx.log.line(`[build] ${opts.boot.release}: no modules.dep; the initrd gets no modules`);
    const order = orderModules(modulesDep, wanted);
    absent = order.absent;
    const rel = relative(opts.root, opts.boot.modulesDir);
    for (const file of order.files) {
      const src = await resolveInRoot(opts.root, `${rel}/${file}`);
      const name = moduleName(file);
      const dest = join(dir, 'lib', 'modules', `${name}.ko`);
      let bytes: Buffer;
      try {
        bytes = await readFile(src);
      } catch {
        ctx.log.line(`[build] module ${file} is listed in modules.dep but missing; skipped`);
        continue;
      }
      // busybox insmod takes plain ELF only.
      if (file.endsWith('.ko.gz')) bytes = gunzipSync(bytes);
      if (file.endsWith('.ko.xz') || file.endsWith('.ko.zst')) {
        const packed = `${dest}${file.endsWith('.xz') ? '.xz' : '.zst'}`;
        await writeFile(packed, bytes);
        if (file.endsWith('.xz')) await runTool(ctx, 'xz', ['-d', '-q', packed], { quiet: true });
        else await runTool(ctx, 'zstd', ['-d', '-q', '--rm', packed], { quiet: true });
      } else await writeFile(dest, bytes);
      names.push(name);
    }
  } else ctx.log.line(`[build] the image has no /lib/modules/${opts.boot.release}; the initrd gets no modules (they must be built in)`);
  if (absent.length > 0) ctx.log.line(`[build] initrd: not loading ${absent.join(', ')} (built into the kernel or not in the image)`);

  await writeFile(join(dir, 'etc', 'kiln-modules'), names.length > 0 ? `${names.join('\n')}\n` : '');
  await writeFile(join(dir, 'etc', 'udhcpc.script'), UDHCPC_SCRIPT, { mode: 0o755 });
  await writeFile(join(dir, 'init'), NETBOOT_INIT, { mode: 0o755 });
  const cpio = join(ctx.workDir, 'initrd.cpio');
  const list = (await listTree(dir)).join('\n') + '\n';
  await runTool(ctx, 'cpio', ['--quiet', '-o', '-H', 'newc', '-R', '0:0', '-F', cpio], { cwd: dir, stdin: list, quiet: true });
  await pipeline(createReadStream(cpio), createGzip({ level: 6 }), createWriteStream(opts.out), { signal: ctx.signal });
  return { modules: names, absent };
}
