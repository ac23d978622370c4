// CustomizeService: what the API and CLI do with customize sessions: start one (checked at once, so a
// typo fails the request rather than the job), show where to connect, and say done. The job itself
// (image-customize-job.ts) may run on any worker; it hears "done" through the store.
import { KilnError } from '../../core/kiln-error.js';
import type { BlobStore, Clock, IdSource, Store } from '../../core/ports.js';
import type { CustomizeSession } from '../../core/types.js';
import { ImageService } from '../../core/services/image-service.js';
import { PublicKeyService } from '../../core/services/public-key-service.js';
import type { Job } from '../job.js';
import type { JobService } from '../job-service.js';
import { customizeTarget, IMAGE_CUSTOMIZE, rootfsOf } from './image-customize-job.js';

export interface CustomizeRequest {
  image: string;
  version: string;
  /** Name or id of a live public key. */
  publicKey: string;
  newVersion?: string | undefined;
  promote?: string | undefined;
  /** The image that gets the new version (created when absent); default: `image`. */
  targetImage?: string | undefined;
}

export interface CustomizeView {
  job: Job;
  session: CustomizeSession | null;
  /** Ready to paste while the session waits for the user; null otherwise. */
  sshCommand: string | null;
}

export class CustomizeService {
  private readonly images: ImageService;
  private readonly keys: PublicKeyService;

  constructor(
    private readonly store: Store,
    blobs: BlobStore,
    private readonly clock: Clock,
    ids: IdSource,
    private readonly jobs: JobService,
  ) {
    this.images = new ImageService(store, blobs, clock, ids);
    this.keys = new PublicKeyService(store, clock, ids);
  }

  /** Checks the request against what exists now and queues the job (the key pinned by id). */
  async start(req: CustomizeRequest, opts: { actor: string; timeoutSeconds?: number | undefined }): Promise<Job> {
    const image = await this.images.get(req.image);
    rootfsOf(await this.images.getVersion(image.name, req.version));
    const key = await this.keys.get(req.publicKey);
    const target = await customizeTarget(this.store, { ...req, image: image.name });
    const input = {
      image: image.name, version: req.version, publicKey: key.id,
      ...(req.newVersion !== undefined ? { newVersion: req.newVersion } : {}), ...(req.promote !== undefined ? { promote: req.promote } : {}),
      ...(req.targetImage !== undefined ? { targetImage: target } : {}),
    };
    return this.jobs.create(IMAGE_CUSTOMIZE, input, { actor: opts.actor, timeoutSeconds: opts.timeoutSeconds });
  }

  async show(jobId: string): Promise<CustomizeView> {
    const job = await this.customizeJob(jobId);
    const session = await this.store.getCustomizeSession(job.id);
    const c = job.status === 'running' ? (session?.connection ?? null) : null;
    // Every session has a fresh host key on a reused port: an alias per job keeps known_hosts apart.
    const sshCommand = c === null ? null : `ssh -o HostKeyAlias=kiln-customize-${job.id} -p ${c.port} ${c.user}@${c.host}`;
    return { job, session, sshCommand };
  }

  /** The user is done: the job stops the session and saves the image. Idempotent while it runs. */
  async done(jobId: string, actor: string): Promise<CustomizeView> {
    const job = await this.customizeJob(jobId);
    const session = await this.store.getCustomizeSession(job.id);
    if (job.status !== 'running' || session === null || (session.connection === null && session.doneRequestedAt === null)) {
      const why = job.status === 'running' ? `it is at stage ${job.stage ?? 'starting'}; ask again once it is waiting_on_user` : `it is ${job.status}`;
      throw new KilnError('KILN_CUSTOMIZE_NOT_WAITING', `customize job ${job.id} is not waiting for the user: ${why}`);
    }
    await this.store.requestCustomizeDone(job.id, actor, this.clock.now().toISOString());
    return this.show(job.id);
  }

  private async customizeJob(jobId: string): Promise<Job> {
    const job = await this.jobs.get(jobId);
    if (job.type !== IMAGE_CUSTOMIZE) throw new KilnError('KILN_CUSTOMIZE_NOT_FOUND', `job ${job.id} is a ${job.type} job, not ${IMAGE_CUSTOMIZE}`);
    return job;
  }
}
