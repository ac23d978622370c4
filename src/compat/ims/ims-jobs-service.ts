// Cray IMS jobs on Kiln's job queue: a `create` job is an `image-build` of the recipe, a `customize`
// job an `image-customize` of the image; both write Kiln image `ims-<target>` version 1. The IMS job
// shares the Kiln job's id. Once the Kiln job succeeds, the result becomes an IMS image (objects
// `<target>/rootfs|kernel|initrd|manifest.json` naming the same bytes, no copy): whichever replica
// reads the job or the image list first registers it, exactly once.
import { KilnError } from '../../core/kiln-error.js';
import type { Store } from '../../core/ports.js';
import type { ImsImage, ImsJob, ImsJobType } from '../../core/ims/ims-records.js';
import { MANIFEST_TYPES } from '../../core/recipes/image-manifest.js';
import type { CustomizeSession, ImageVersion } from '../../core/types.js';
import type { Job, JobStatus } from '../../jobs/job.js';
import type { JobService } from '../../jobs/job-service.js';
import type { CustomizeService } from '../../jobs/customize/customize-service.js';
import { isManifestArtifact } from '../../jobs/customize/refresh-manifest.js';
import type { RecipeService } from '../../core/services/recipe-service.js';
import { conflict, kilnNameOf, notFound, readFields, type ImsRecordsService, type ResultEntry } from './ims-records-service.js';
import * as S from './ims-schemas.js';

export interface ImsJobView {
  job: ImsJob;
  kiln: Job | null;
  session: CustomizeSession | null;
  status: S.ImsJobStatus;
}

export interface ImsJobDeps {
  store: Store;
  jobs: JobService;
  customize: CustomizeService;
  recipes: RecipeService;
  records: ImsRecordsService;
  now: () => Date;
}

const KERNEL_BY_ARCH = { x86_64: 'vmlinuz', aarch64: 'Image' } as const;
const AGE = /^(\d{1,6})\s*(w|d|h|m)$/;
const AGE_SECONDS = { w: 7 * 86400, d: 86400, h: 3600, m: 60 } as const;
/** IMS object names per role, as its packaging writes them. */
const KEY_OF_ROLE = { kernel: 'kernel', initrd: 'initrd', rootfs: 'rootfs' } as const;

export interface JobFilters {
  status: string[];
  jobType: string | undefined;
  age: string | undefined;
}

export class ImsJobsService {
  constructor(private readonly deps: ImsJobDeps) {}

  async create(body: unknown, actor: string): Promise<ImsJobView> {
    const f = readFields(body, S.JobCreate);
    const jobType = f.job_type as ImsJobType;
    const artifactId = f.artifact_id as string;
    const bad = (m: string) => new KilnError('KILN_IMS_BAD_REQUEST', m);
    const key = await this.deps.store.getPublicKey(f.public_key_id as string);
    if (key === null || key.deletedAt !== null) throw bad(`public_key_id ${f.public_key_id as string}: no such public key`);
    let containers = (f.ssh_containers as { name: string; jail: boolean }[] | undefined) ?? [];
    const targetImageId = this.deps.records.newId();
    let kiln: Job;
    let arch: 'x86_64' | 'aarch64';
    let requireDkms = f.require_dkms as boolean | undefined;
    if (jobType === 'create') {
      const recipe = await this.deps.store.ims.getRecipe(artifactId);
      if (recipe === null || recipe.deletedAt !== null) throw bad(`artifact_id ${artifactId}: no such recipe`);
      if (recipe.link === null) throw bad(`recipe ${artifactId} has no link; upload its archive and PATCH the link first`);
      if (f.ssh_containers !== undefined) throw bad('ssh_containers cannot be given for create jobs');
      // IMS's debug shell on a failed build: Kiln keeps the build log instead (GET the job's logs).
      containers = f.enable_debug === true ? [{ name: 'debug', jail: false }] : [];
      arch = recipe.arch;
      requireDkms = arch === 'aarch64' ? true : (requireDkms ?? recipe.requireDkms);
      const name = await this.deps.records.kilnRecipeFor(recipe);
      const plan = await this.deps.recipes.planBuild({ recipe: name, image: kilnNameOf(targetImageId), version: '1' });
      kiln = await this.deps.jobs.create('image-build', plan, { actor });
    } else {
      const image = await this.deps.store.ims.getImage(artifactId);
      if (image === null || image.deletedAt !== null) throw bad(`artifact_id ${artifactId}: no such image`);
      if (image.link === null) throw bad(`image ${artifactId} has no link; it has no artifacts to customize`);
      if (containers.length > 1) throw bad('at most one ssh container per job');
      if (containers.length === 0) containers = [{ name: 'customize', jail: false }];
      arch = image.arch;
      requireDkms = arch === 'aarch64' ? true : (requireDkms ?? true);
      if ((await this.deps.store.getVersion(kilnNameOf(image.id), '1')) === null) throw bad(`image ${artifactId} has no artifacts in Kiln`);
      kiln = await this.deps.customize.start(
        { image: kilnNameOf(image.id), version: '1', publicKey: key.id, targetImage: kilnNameOf(targetImageId), newVersion: '1' },
        { actor },
      );
    }
    const fields = {
      job_type: jobType, artifact_id: artifactId, public_key_id: key.id, image_root_archive_name: f.image_root_archive_name,
      enable_debug: (f.enable_debug as boolean | undefined) ?? false, build_env_size: f.build_env_size ?? 15, job_mem_size: f.job_mem_size ?? 8,
      kernel_file_name: f.kernel_file_name ?? KERNEL_BY_ARCH[arch], initrd_file_name: f.initrd_file_name ?? 'initrd',
      kernel_parameters_file_name: f.kernel_parameters_file_name ?? 'kernel-parameters', require_dkms: requireDkms, arch, ssh_containers: containers,
    };
    try {
      const job = await this.deps.store.ims.createJob({ id: kiln.id, jobType, artifactId, targetImageId, resultantImageId: null, fields, createdAt: kiln.createdAt });
      return { job, kiln, session: null, status: 'creating' };
    } catch (err) {
      await this.deps.jobs.cancel(kiln.id).catch(() => undefined);
      throw err;
    }
  }

  async list(): Promise<ImsJobView[]> {
    await this.registerFinished();
    const jobs = await this.deps.store.ims.listJobs();
    return Promise.all(jobs.map((j) => this.view(j)));
  }

  async get(id: string): Promise<ImsJobView> {
    const job = await this.deps.store.ims.getJob(id);
    if (job === null) throw notFound();
    return this.view(await this.register(job));
  }

  /** Deletes the record; a job still running is cancelled (its processes killed, nothing registered). */
  async delete(id: string): Promise<void> {
    const job = await this.deps.store.ims.getJob(id);
    if (job === null) throw notFound();
    await this.stop(job);
    await this.deps.store.ims.deleteJob(id);
  }

  /** IMS's bulk delete: by status (any of), job type, and minimum age ("1d", "6h", "2w", "30m"). */
  async deleteMany(filters: JobFilters): Promise<void> {
    const bad = (m: string) => new KilnError('KILN_IMS_BAD_REQUEST', m);
    for (const s of filters.status) if (!(S.IMS_JOB_STATUSES as readonly string[]).includes(s)) throw bad(`status ${JSON.stringify(s.slice(0, 40))}: want one of ${S.IMS_JOB_STATUSES.join(', ')}`);
    if (filters.jobType !== undefined && filters.jobType !== 'create' && filters.jobType !== 'customize') throw bad('job_type: want create or customize');
    let before: number | null = null;
    if (filters.age !== undefined) {
      const m = AGE.exec(filters.age.trim());
      if (m === null) throw bad(`age ${JSON.stringify(filters.age.slice(0, 40))}: want a number and w, d, h or m (e.g. 1d, 6h)`);
      before = this.deps.now().getTime() - Number(m[1]) * AGE_SECONDS[m[2] as keyof typeof AGE_SECONDS] * 1000;
    }
    for (const v of await this.list()) {
      if (filters.status.length > 0 && !filters.status.includes(v.status)) continue;
      if (filters.jobType !== undefined && v.job.jobType !== filters.jobType) continue;
      if (before !== null && Date.parse(v.job.createdAt) > before) continue;
      await this.stop(v.job);
      await this.deps.store.ims.deleteJob(v.job.id);
    }
  }

  /** IMS's job pods report their status with PATCH; Kiln's workers report through the queue. */
  async patch(id: string, body: unknown): Promise<never> {
    readFields(body, S.JobPatch);
    if ((await this.deps.store.ims.getJob(id)) === null) throw notFound();
    throw conflict(`job ${id}: status and resultant_image_id are reported by Kiln's worker, not set by clients`);
  }

  private async stop(job: ImsJob): Promise<void> {
    const kiln = await this.deps.jobs.get(job.id).catch(() => null);
    if (kiln !== null && (kiln.status === 'queued' || kiln.status === 'running')) await this.deps.jobs.cancel(job.id);
  }

  /** Registers the results of every job that succeeded since it was last looked at. */
  async registerFinished(): Promise<void> {
    for (const j of await this.deps.store.ims.listUnfinishedJobs()) await this.register(j);
  }

  private async register(job: ImsJob): Promise<ImsJob> {
    if (job.resultantImageId !== null) return job;
    const kiln = await this.deps.jobs.get(job.id).catch(() => null);
    if (kiln?.status !== 'succeeded') return job;
    const version = await this.deps.store.getVersion(kilnNameOf(job.targetImageId), '1');
    if (version === null) return job;
    const image: ImsImage = {
      id: job.targetImageId, name: String(job.fields.image_root_archive_name), arch: version.arch, metadata: {},
      link: null, createdAt: kiln.finishedAt ?? kiln.updatedAt, deletedAt: null,
    };
    await this.deps.records.registerResult(image, await this.entriesOf(version), job.id);
    return (await this.deps.store.ims.getJob(job.id)) ?? job;
  }

  /** The artifacts of a built version as IMS objects would list them (md5 from Kiln's manifest, or computed). */
  private async entriesOf(version: ImageVersion): Promise<ResultEntry[]> {
    const md5s = await this.manifestMd5s(version);
    const out: ResultEntry[] = [];
    const used = new Set<string>();
    for (const a of version.artifacts) {
      if (isManifestArtifact(a)) continue;
      if (a.role === 'other' && !a.name.startsWith('kernel-parameters')) continue;
      const key = a.role === 'other' ? 'boot_parameters' : KEY_OF_ROLE[a.role];
      if (used.has(key)) continue;
      used.add(key);
      const md5 = md5s.get(a.sha256) ?? (await this.deps.records.objects.md5Of(a.sha256));
      out.push({ key, type: a.role === 'other' ? MANIFEST_TYPES.parameters : MANIFEST_TYPES[a.role], md5, sha256: a.sha256, size: a.size, mediaType: a.mediaType });
    }
    return out;
  }

  private async manifestMd5s(version: ImageVersion): Promise<Map<string, string>> {
    const m = version.artifacts.find(isManifestArtifact);
    const out = new Map<string, string>();
    if (m === undefined) return out;
    try {
      const doc = JSON.parse(await this.deps.records.objects.readArtifactText(m.sha256, 1024 * 1024)) as { artifacts?: { sha256?: unknown; md5?: unknown }[] };
      for (const a of doc.artifacts ?? []) if (typeof a.sha256 === 'string' && typeof a.md5 === 'string' && /^[0-9a-f]{32}$/.test(a.md5)) out.set(a.sha256, a.md5);
    } catch {
      // No usable md5s: they are computed.
    }
    return out;
  }

  async view(job: ImsJob): Promise<ImsJobView> {
    const kiln = await this.deps.jobs.get(job.id).catch(() => null);
    const session = job.jobType === 'customize' ? await this.deps.store.getCustomizeSession(job.id) : null;
    let status = statusOf(job, kiln);
    // Succeeded but its version is gone (removed by hand): it can never be registered.
    if (status === 'packaging_artifacts' && kiln?.status === 'succeeded' && (await this.deps.store.getVersion(kilnNameOf(job.targetImageId), '1')) === null) status = 'error';
    return { job, kiln, session, status };
  }
}

/** IMS's status from the Kiln job: its stages carry IMS's names; `success` once the image is registered. */
export function statusOf(job: ImsJob, kiln: Job | null): S.ImsJobStatus {
  if (kiln === null) return 'error';
  const finished: Record<Exclude<JobStatus, 'queued' | 'running'>, S.ImsJobStatus> = { succeeded: job.resultantImageId !== null ? 'success' : 'packaging_artifacts', failed: 'error', cancelled: 'error' };
  if (kiln.status === 'queued') return 'creating';
  if (kiln.status !== 'running') return finished[kiln.status];
  const stage = kiln.stage ?? '';
  if (stage === 'fetching') return job.jobType === 'create' ? 'fetching_recipe' : 'fetching_image';
  return (S.IMS_JOB_STATUSES as readonly string[]).includes(stage) ? (stage as S.ImsJobStatus) : 'creating';
}
