// `image-customize`: opens an image version for changes over SSH and saves them as a new version.
// The rootfs squashfs is unpacked into the work directory (a writable copy: no loop device, no host
// mount), a system container runs the worker's sshd on a port of customize.ports chrooting logins
// into it (customize-container.ts), and only the registered public key gets in. The job waits in
// stage `waiting_on_user` until the user says done (API / CLI, seen through the store so any replica
// can take the request) or creates /tmp/complete inside; then the container stops, the tree becomes a
// zstd squashfs, and a new version keeps every other artifact of the original (a manifest refreshed).
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { access, constants, lstat, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Type } from 'typebox';
import { KilnError } from '../../core/kiln-error.js';
import type { Store } from '../../core/ports.js';
import type { CustomizeSession } from '../../core/types.js';
import { ArtifactService } from '../../core/services/artifact-service.js';
import { ImageService, type NewVersion } from '../../core/services/image-service.js';
import { PublicKeyService, parseSshPublicKey } from '../../core/services/public-key-service.js';
import type { ImageVersion, VersionArtifact } from '../../core/types.js';
import { validateName, validateVersion } from '../../core/validate.js';
import type { JobTypeDeps } from '../job-registry.js';
import { defineJobType, type JobContext } from '../job-types.js';
import type { RunResult } from '../process-runner.js';
import { JOB_DIR_ENV } from '../work-dirs.js';
import { CONTAINER_SCRIPT, containerCommand, renderSshdConfig } from './customize-container.js';
import { advertisedHost, DEFAULT_CUSTOMIZE_SETTINGS, type CustomizeSettings } from './customize-settings.js';
import { PortPool, canBind } from './port-pool.js';
import { isManifestArtifact, manifestWantsMd5, refreshManifest, replaceDigests } from './refresh-manifest.js';

export const IMAGE_CUSTOMIZE = 'image-customize';
/** The file a user creates inside the image to finish, as in Cray IMS (jailed sessions). */
export const COMPLETE_MARKER = '/tmp/complete';
/** A customize session waits for a person: a day by default (a job may ask for up to a week). */
const DEFAULT_TIMEOUT_SECONDS = 24 * 3600;
const MAX_MANIFEST_BYTES = 1024 * 1024;
/** sshd that has not bound its port after this long is not going to. */
const SSHD_READY_MS = 30_000;
const SSHD_TRIES = 3;

/**
 * The image that gets a customize job's new version (checked when the job is asked for and again when
 * it runs): not deleted, without a version of the requested name; the promote channel a valid name.
 */
export async function customizeTarget(store: Store, req: { image: string; newVersion?: string | undefined; promote?: string | undefined; targetImage?: string | undefined }): Promise<string> {
  const target = validateName(req.targetImage ?? req.image, 'image name');
  const existing = await store.getImage(target);
  if (existing !== null && existing.deletedAt !== null) throw new KilnError('KILN_IMAGE_DELETED', `image ${target} is deleted; restore it first`);
  if (existing !== null && req.newVersion !== undefined && (await store.getVersion(target, validateVersion(req.newVersion))) !== null) {
    throw new KilnError('KILN_VERSION_EXISTS', `image ${target} already has version ${req.newVersion}`);
  }
  if (req.promote !== undefined) validateName(req.promote, 'channel name');
  return target;
}

/** Another job created the target image a moment earlier: fine, the version goes there. */
function ignoreExists(err: unknown): void {
  if (!(err instanceof KilnError && err.code === 'KILN_IMAGE_EXISTS')) throw err;
}

export const ImageCustomizeInput = Type.Object(
  {
    image: Type.String({ minLength: 1, maxLength: 63 }),
    version: Type.String({ minLength: 1, maxLength: 64, description: 'the version to start from' }),
    publicKey: Type.String({ minLength: 1, maxLength: 128, description: 'name or id of a registered public key (the only one that can log in)' }),
    newVersion: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'name of the version to create (default: the next number)' })),
    promote: Type.Optional(Type.String({ minLength: 1, maxLength: 63, description: 'channel to point at the new version once registered' })),
    targetImage: Type.Optional(Type.String({ minLength: 1, maxLength: 63, description: 'image that gets the new version (created when absent; default: the image customized)' })),
  },
  { additionalProperties: false },
);

export interface ImageCustomizeResult {
  image: string;
  version: string;
  from: string;
  rootfs: { sha256: string; size: number };
  promoted: string | null;
}

/** The only rootfs artifact of a version; KILN_CUSTOMIZE_NO_ROOTFS when it has none or several. */
export function rootfsOf(v: ImageVersion): VersionArtifact {
  const found = v.artifacts.filter((a) => a.role === 'rootfs');
  if (found.length !== 1) throw new KilnError('KILN_CUSTOMIZE_NO_ROOTFS', `version ${v.version} of ${v.image} has ${found.length} rootfs artifacts; customize needs exactly one squashfs`);
  return found[0]!;
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(() => true, () => false);
}

/** The marker inside the image, looked up without following a `/tmp` symlink out of the image. */
async function markerPath(root: string): Promise<string | null> {
  const tmp = await lstat(join(root, 'tmp')).catch(() => null);
  return tmp?.isDirectory() === true ? join(root, COMPLETE_MARKER) : null;
}

export function imageCustomizeJob(deps: JobTypeDeps) {
  const settings: CustomizeSettings = deps.customize ?? DEFAULT_CUSTOMIZE_SETTINGS;
  const images = new ImageService(deps.store, deps.blobs, deps.clock, deps.ids);
  const artifacts = new ArtifactService(deps.store, deps.blobs, deps.clock);
  const keys = new PublicKeyService(deps.store, deps.clock, deps.ids);
  const ports = new PortPool(settings.address, settings.ports);
  const now = () => deps.clock.now().toISOString();

  /** Downloads a blob to `path`, checking its sha256 on the way. */
  async function fetchBlob(ctx: JobContext<unknown>, sha256: string, path: string): Promise<void> {
    const hash = createHash('sha256');
    await pipeline(
      await deps.blobs.read(sha256),
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          hash.update(chunk);
          yield chunk;
        }
      },
      createWriteStream(path, { mode: 0o600 }),
      { signal: ctx.signal },
    );
    if (hash.digest('hex') !== sha256) throw new Error(`artifact ${sha256} read back with a different sha256; the blob store holds damaged bytes`);
  }

  /**
   * Starts the container and waits until sshd listens (its pid file appears once the port is
   * bound). Retries on another port when someone else took the one chosen meanwhile.
   */
  async function startSshd(ctx: JobContext<unknown>, root: string, session: string): Promise<{ port: number; container: Promise<RunResult>; settled: () => boolean }> {
    const pidFile = join(session, 'sshd.pid');
    for (let attempt = 1; ; attempt++) {
      const port = await ports.reserve();
      await writeFile(join(session, 'sshd_config'), renderSshdConfig({ address: settings.address, port, pidFile }), { mode: 0o600 });
      await rm(pidFile, { force: true });
      const { command, args } = containerCommand({ script: join(session, 'container.sh'), root, session, sshd: settings.sshd, env: { KILN_JOB_ID: ctx.job.id, [JOB_DIR_ENV]: ctx.workDir } });
      let done = false;
      const container = ctx.run(command, args).finally(() => (done = true));
      // Observed below; an unhandled rejection must not escape while we poll.
      container.catch(() => undefined);
      const started = Date.now();
      while (!done && !(await exists(pidFile)) && Date.now() - started < SSHD_READY_MS) await sleep(100, undefined, { signal: ctx.signal });
      if (!done && (await exists(pidFile))) return { port, container, settled: () => done };
      // Still running but not listening: give up; the worker stops the container when the job ends.
      if (!done) throw new KilnError('KILN_CUSTOMIZE_SSHD_FAILED', `sshd did not listen on ${settings.address}:${port} within ${SSHD_READY_MS / 1000} s`);
      const err = await container.then(() => null, (e: unknown) => e);
      ports.release(port);
      if (ctx.signal.aborted) throw err instanceof Error ? err : new Error('stopped');
      if (attempt < SSHD_TRIES && !(await canBind(settings.address, port))) {
        ctx.log.line(`[kiln] port ${port} was taken meanwhile; trying another`);
        continue;
      }
      throw new KilnError('KILN_CUSTOMIZE_SSHD_FAILED', `sshd stopped before it listened on ${settings.address}:${port}${err instanceof Error ? ` (${err.message})` : ''}; the job log has its messages`);
    }
  }

  /** Resolves once the user is done (done request, or the marker file); throws if the container ends first. */
  async function waitForUser(ctx: JobContext<unknown>, root: string, sshdSettled: () => boolean): Promise<'api' | 'marker'> {
    for (;;) {
      if (sshdSettled()) throw new KilnError('KILN_CUSTOMIZE_SSHD_FAILED', 'the session ended before the user said done (sshd stopped; see the log)');
      const marker = await markerPath(root);
      if (marker !== null && (await exists(marker))) return 'marker';
      const s = await deps.store.getCustomizeSession(ctx.job.id);
      if (s?.doneRequestedAt != null) {
        ctx.log.line(`[kiln] ${s.doneRequestedBy ?? 'someone'} said done`);
        return 'api';
      }
      await sleep(1000, undefined, { signal: ctx.signal });
    }
  }

  return defineJobType({
    type: IMAGE_CUSTOMIZE,
    description: 'Opens an image version over SSH (a registered public key, root in a chroot) and saves the changes as a new version',
    inputSchema: ImageCustomizeInput,
    apiCreatable: true,
    timeoutSeconds: DEFAULT_TIMEOUT_SECONDS,
    // A second attempt would start over from the original and lose what the user did: none.
    maxAttempts: 1,
    async run(ctx): Promise<ImageCustomizeResult> {
      const { input, job } = ctx;
      ctx.stage('fetching_image');
      const image = await images.get(input.image);
      const from = await images.getVersion(image.name, input.version);
      const rootfs = rootfsOf(from);
      const key = await keys.get(input.publicKey);
      const parsedKey = parseSshPublicKey(key.publicKey);
      const target = await customizeTarget(deps.store, input);
      if (process.getuid?.() !== 0) throw new KilnError('KILN_CUSTOMIZE_SSHD_FAILED', `customize sessions need a worker running as root (namespaces, mounts, sshd); worker ${hostname()} is not`);
      await access(settings.sshd, constants.X_OK).catch(() => {
        throw new KilnError('KILN_CUSTOMIZE_SSHD_FAILED', `no OpenSSH server at ${settings.sshd} on worker ${hostname()} (apt-get install openssh-server, or set customize.sshd)`);
      });
      const at = now();
      const base: CustomizeSession = {
        jobId: job.id, image: image.name, version: from.version, publicKeyId: key.id, publicKeyFingerprint: key.fingerprint, connection: null,
        doneRequestedAt: null, doneRequestedBy: null, createdAt: at, updatedAt: at,
      };
      await deps.store.saveCustomizeSession(base);

      const squashfs = join(ctx.workDir, 'rootfs.sqfs');
      const root = join(ctx.workDir, 'root');
      const session = join(ctx.workDir, 'session');
      await fetchBlob(ctx, rootfs.sha256, squashfs);
      ctx.progress(10);
      await ctx.run('unsquashfs', ['-no-progress', '-dest', root, squashfs]);
      await rm(squashfs);
      const rootStat = await stat(root);
      if (rootStat.uid !== 0 || (rootStat.mode & 0o022) !== 0) {
        throw new KilnError('KILN_CUSTOMIZE_NO_ROOTFS', `the root directory of ${image.name} ${from.version}'s rootfs is not root's or is writable by others; sshd will not chroot into it`);
      }
      ctx.progress(20);

      await mkdir(session, { mode: 0o700 });
      await ctx.run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `kiln-customize-${job.id}`, '-f', join(session, 'host_ed25519_key')]);
      const hostKey = parseSshPublicKey(await readFile(join(session, 'host_ed25519_key.pub'), 'utf8'));
      await writeFile(join(session, 'authorized_keys'), `${parsedKey.type} ${parsedKey.base64} kiln:${key.name}\n`, { mode: 0o600 });
      await writeFile(join(session, 'banner'), [
        `Kiln customize session: image ${image.name}, version ${from.version} (job ${job.id}).`,
        `Changes to / are saved as a new version when you are done: touch ${COMPLETE_MARKER}, or run \`kiln image customize-done ${job.id}\`.`,
        '',
      ].join('\n'), { mode: 0o644 });
      await writeFile(join(session, 'container.sh'), CONTAINER_SCRIPT, { mode: 0o600 });
      // Mount point of the container's private tmpfs; Debian's sshd wants it anyway.
      await mkdir('/run/sshd', { recursive: true, mode: 0o755 });

      const sshd = await startSshd(ctx, root, session);
      try {
        const connection = { host: advertisedHost(settings, hostname()), port: sshd.port, user: 'root', hostKeyFingerprint: hostKey.fingerprint };
        await deps.store.setCustomizeConnection(job.id, connection, now());
        ctx.log.line(`[kiln] ssh -p ${connection.port} ${connection.user}@${connection.host}   (host key ${connection.hostKeyFingerprint}; key ${key.name} ${key.fingerprint})`);
        ctx.stage('waiting_on_user');
        ctx.progress(30);
        const finished = await waitForUser(ctx, root, sshd.settled);
        if (finished === 'marker') ctx.log.line(`[kiln] ${COMPLETE_MARKER} appeared in the image`);
        await writeFile(join(session, 'stop'), '');
        await sshd.container;
      } finally {
        ports.release(sshd.port);
        await deps.store.setCustomizeConnection(job.id, null, now()).catch(() => undefined);
      }

      ctx.stage('packaging_artifacts');
      const marker = await markerPath(root);
      if (marker !== null) await rm(marker, { force: true });
      const out = join(ctx.workDir, 'rootfs.new.sqfs');
      await ctx.run('mksquashfs', [root, out, '-comp', 'zstd', '-Xcompression-level', '3', '-noappend', '-no-progress', '-quiet']);
      await rm(root, { recursive: true, force: true });
      ctx.progress(70);
      const uploaded = (await artifacts.upload(createReadStream(out), { mediaType: rootfs.mediaType })).artifact;
      const replacements = new Map<string, string>([[rootfs.sha256, uploaded.sha256]]);
      for (const a of from.artifacts.filter(isManifestArtifact)) {
        replacements.set(a.sha256, await writeManifest(a, rootfs.sha256, { sha256: uploaded.sha256, size: uploaded.size }, out));
      }
      ctx.progress(90);
      if ((await deps.store.getImage(target)) === null) await images.create({ name: target, description: `customized from ${image.name} ${from.version}` }).catch(ignoreExists);
      const created = await registerVersion(target, input.newVersion, {
        arch: from.arch,
        cmdline: from.cmdline,
        // Metadata naming the old rootfs or manifest by digest (a build's `manifest`) follows the new ones.
        metadata: { ...replaceDigests(from.metadata, replacements), customizedFrom: { version: from.version, job: job.id } },
        artifacts: from.artifacts.map((a) => ({ name: a.name, role: a.role, sha256: replacements.get(a.sha256) ?? a.sha256 })),
      });
      ctx.log.line(`[kiln] registered ${target} version ${created.version} (rootfs ${uploaded.sha256}, ${uploaded.size} bytes)`);
      if (input.promote !== undefined) {
        await images.promote(target, input.promote, created.version, job.createdBy ?? `job ${job.id}`, undefined);
        ctx.log.line(`[kiln] promoted ${input.promote} to ${created.version}`);
      }
      return { image: target, version: created.version, from: from.version, rootfs: { sha256: uploaded.sha256, size: uploaded.size }, promoted: input.promote ?? null };
    },
  });

  /**
   * Registers the version under the name asked for, else under the next free number: the user's work
   * must not be lost because another job took "count + 1" a moment earlier.
   */
  async function registerVersion(imageName: string, name: string | undefined, v: Omit<NewVersion, 'version'>): Promise<ImageVersion> {
    if (name !== undefined) return images.createVersion(imageName, { ...v, version: name });
    for (let tries = 1; ; tries++) {
      const taken = (await deps.store.listVersions(imageName)).map((x) => x.version);
      const next = Math.max(taken.length, ...taken.filter((x) => /^\d{1,15}$/.test(x)).map(Number)) + 1;
      try {
        return await images.createVersion(imageName, { ...v, version: String(next) });
      } catch (err) {
        if (!(err instanceof KilnError && err.code === 'KILN_VERSION_EXISTS') || tries >= 5) throw err;
      }
    }
  }

  /** Stores a refreshed copy of the manifest artifact `a`; returns its sha256. */
  async function writeManifest(a: VersionArtifact, oldRootfs: string, rootfs: { sha256: string; size: number }, squashfs: string): Promise<string> {
    if (a.size > MAX_MANIFEST_BYTES) throw new Error(`manifest ${a.name} is larger than ${MAX_MANIFEST_BYTES} bytes`);
    const chunks: Buffer[] = [];
    for await (const c of await deps.blobs.read(a.sha256)) chunks.push(c as Buffer);
    const doc: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const md5 = manifestWantsMd5(doc, oldRootfs) ? await md5Of(squashfs) : undefined;
    const { doc: fresh, replaced } = refreshManifest(doc, oldRootfs, { ...rootfs, md5 }, now());
    if (replaced === 0) throw new Error(`manifest ${a.name} does not list the rootfs (${oldRootfs}); cannot write one for the new version`);
    const stored = await artifacts.upload(Readable.from([Buffer.from(`${JSON.stringify(fresh, null, 2)}\n`)]), { mediaType: a.mediaType });
    return stored.artifact.sha256;
  }
}

async function md5Of(path: string): Promise<string> {
  const h = createHash('md5');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
}
