// The system container of a customize session: the worker's own OpenSSH server, in new mount, PID,
// UTS and IPC namespaces, chrooting every login into the unpacked image root (ChrootDirectory).
//
// Why the worker's sshd and not the image's: images need no openssh-server (most netboot images have
// none, or one configured for production), and nothing of the session (host key, authorized_keys,
// sshd_config, passwd tweaks) ever lands in the image. Why namespaces: every mount (proc, sys, dev,
// the bind of the root, the tmpfs holding keys) lives in the container's own mount namespace and
// vanishes with it, so the host never sees a mount to clean up; and when the shell that is PID 1 of
// the container exits or is killed, the kernel kills every process of the sessions with it.
//
// What it is not: a security boundary. Logins are root, in a chroot, on the worker's network,
// with the worker's capabilities: give customize access only to people trusted with root on the
// worker hosts (run customize on dedicated build workers, jobs.types).

/** The mount point of the container's private tmpfs (Debian's sshd also uses it as privsep directory). */
export const STAGE_DIR = '/run/sshd';
/** Where the image root appears inside the container: a path whose every component is root's and not writable by others, as ChrootDirectory demands. */
export const CHROOT_DIR = `${STAGE_DIR}/root`;
const ETC = `${STAGE_DIR}/etc`;

/**
 * Runs as PID 1 of the container (sh, from the host). Arguments: image root, session directory
 * (holding sshd_config, host key, authorized_keys, banner; `stop` appears there when the job wants
 * the session over), sshd binary. Exits 0 after a stop; sshd's status if it ends on its own.
 */
export const CONTAINER_SCRIPT = `set -eu
root=$1 session=$2 sshd=$3
r=${CHROOT_DIR}
mount -t tmpfs -o mode=0755,size=16m kiln-customize ${STAGE_DIR}
mkdir ${CHROOT_DIR} ${ETC}
cp "$session/sshd_config" "$session/host_ed25519_key" "$session/authorized_keys" "$session/banner" ${ETC}/
chmod 0600 ${ETC}/host_ed25519_key ${ETC}/authorized_keys
mount --bind "$root" "$r"
echo kiln-customize > /proc/sys/kernel/hostname || true
# Logins get their own pseudo-terminals; the chroot sees the same devpts instance as sshd.
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
mount --bind /dev/pts/ptmx /dev/ptmx
if [ -d "$r/proc" ]; then mount -t proc -o nosuid,nodev,noexec proc "$r/proc"; fi
if [ -d "$r/sys" ]; then mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$r/sys"; fi
if [ -d "$r/dev" ]; then
  mount -t tmpfs -o mode=0755,nosuid,size=1m kiln-dev "$r/dev"
  for d in null zero full random urandom tty; do : > "$r/dev/$d"; mount --bind "/dev/$d" "$r/dev/$d"; done
  mkdir "$r/dev/pts" "$r/dev/shm"
  mount --bind /dev/pts "$r/dev/pts"
  ln -s pts/ptmx "$r/dev/ptmx"
  ln -s /proc/self/fd "$r/dev/fd"
fi
if [ -d "$r/run" ] && [ ! -L "$r/run" ]; then mount -t tmpfs -o mode=0755,nosuid,nodev kiln-run "$r/run"; fi
# Name resolution for package installs: the worker's resolver, read-only, over a regular file only.
if [ -f "$r/etc/resolv.conf" ] && [ ! -L "$r/etc/resolv.conf" ] && [ -f /etc/resolv.conf ]; then mount --bind -o ro /etc/resolv.conf "$r/etc/resolv.conf"; fi
# sshd looks root up on the host: give it the image's shell, and an unlocked (but passwordless) entry.
shell=/bin/sh
if [ -x "$r/bin/bash" ]; then shell=/bin/bash; fi
sed -e "s#^root:.*#root:x:0:0:root:/root:$shell#" /etc/passwd > ${ETC}/passwd
echo 'root:*:1::::::' > ${ETC}/shadow
chmod 0644 ${ETC}/passwd
chmod 0600 ${ETC}/shadow
mount --bind ${ETC}/passwd /etc/passwd
if [ -e /etc/shadow ]; then mount --bind ${ETC}/shadow /etc/shadow; fi
"$sshd" -D -e -f ${ETC}/sshd_config &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null; exit 143' TERM INT
while [ ! -e "$session/stop" ] && kill -0 "$pid" 2>/dev/null; do sleep 1; done
if [ -e "$session/stop" ]; then kill -TERM "$pid" 2>/dev/null || true; exit 0; fi
status=0
wait "$pid" || status=$?
echo "sshd ended on its own (status $status)" >&2
if [ "$status" -eq 0 ]; then status=1; fi
exit "$status"
`;

/**
 * The command line that starts the container, CONTAINER_SCRIPT written to `script` beforehand.
 * Through `env -i`: the worker's environment (database URL, S3 keys) must not be readable in
 * /proc/1/environ by whoever logs in.
 */
export function containerCommand(o: { script: string; root: string; session: string; sshd: string; env: Record<string, string> }): { command: string; args: string[] } {
  return {
    command: 'env',
    args: [
      '-i', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'LANG=C.UTF-8', ...Object.entries(o.env).map(([k, v]) => `${k}=${v}`),
      // --kill-child: should unshare itself die, the container's PID 1 (and so every session) dies with it.
      'unshare', '--mount', '--pid', '--uts', '--ipc', '--fork', '--kill-child', '--propagation', 'private', '--mount-proc',
      'sh', o.script, o.root, o.session, o.sshd,
    ],
  };
}

// Values spliced into sshd_config: no whitespace, quotes, '#' or control characters.
const CONFIG_SAFE = /^[A-Za-z0-9._:/@%+-]+$/;

function safe(value: string, what: string): string {
  if (!CONFIG_SAFE.test(value)) throw new Error(`${what} ${JSON.stringify(value)} cannot go into sshd_config (no spaces, quotes or '#')`);
  return value;
}

/** sshd_config of a session: public key only, root only, chrooted into the image, no forwarding. */
export function renderSshdConfig(o: { address: string; port: number; pidFile: string }): string {
  const address = safe(o.address, 'customize.address');
  const listen = address.includes(':') ? `[${address}]:${o.port}` : `${address}:${o.port}`;
  return [
    '# Written by Kiln for one customize session.',
    `ListenAddress ${listen}`,
    `HostKey ${ETC}/host_ed25519_key`,
    `AuthorizedKeysFile ${ETC}/authorized_keys`,
    // Written once the listening socket is bound: the job waits for it.
    `PidFile ${safe(o.pidFile, 'the work directory')}`,
    'AllowUsers root',
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'HostbasedAuthentication no',
    'UsePAM no',
    'StrictModes yes',
    `ChrootDirectory ${CHROOT_DIR}`,
    'Subsystem sftp internal-sftp',
    'AllowTcpForwarding no',
    'AllowAgentForwarding no',
    'AllowStreamLocalForwarding no',
    'PermitTunnel no',
    'X11Forwarding no',
    'PermitUserEnvironment no',
    'UseDNS no',
    'PrintMotd no',
    'PrintLastLog no',
    'LoginGraceTime 60',
    'ClientAliveInterval 60',
    `Banner ${ETC}/banner`,
    // INFO logs each login with its key's fingerprint; VERBOSE would also tell the client about the chroot.
    'LogLevel INFO',
    '',
  ].join('\n');
}
