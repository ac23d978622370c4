// Kiln's records as IMS's JSON: field names, types and the Kubernetes-only fields (filled with Kiln's
// equivalents: the Kiln job and the worker that runs it; the rest empty).
import type { ImsImage, ImsRecipe } from '../../core/ims/ims-records.js';
import type { PublicKey } from '../../core/types.js';
import type { ImsJobView } from './ims-jobs-service.js';

const withDeleted = <T extends Record<string, unknown>>(body: T, deletedAt: string | null): T => (deletedAt === null ? body : { ...body, deleted: deletedAt });

export function recipeJson(r: ImsRecipe): Record<string, unknown> {
  return withDeleted({
    id: r.id, created: r.createdAt, name: r.name, link: r.link, recipe_type: r.recipeType, linux_distribution: r.linuxDistribution,
    template_dictionary: r.templateDictionary, require_dkms: r.requireDkms, arch: r.arch,
  }, r.deletedAt);
}

export function imageJson(i: ImsImage): Record<string, unknown> {
  return withDeleted({ id: i.id, created: i.createdAt, name: i.name, link: i.link, arch: i.arch, metadata: i.metadata }, i.deletedAt);
}

export function publicKeyJson(k: PublicKey): Record<string, unknown> {
  return withDeleted({ id: k.id, created: k.createdAt, name: k.name, public_key: k.publicKey }, k.deletedAt);
}

type SshStatus = 'pending' | 'establishing' | 'active' | 'complete';

function sshStatus(v: ImsJobView): SshStatus {
  const k = v.kiln;
  if (k === null || k.status === 'queued') return 'pending';
  if (k.status !== 'running') return 'complete';
  if (v.job.jobType === 'create') return 'pending';
  if (k.stage === 'waiting_on_user') return v.session?.connection != null ? 'active' : 'establishing';
  return k.stage === 'packaging_artifacts' ? 'complete' : 'establishing';
}

export function jobJson(v: ImsJobView): Record<string, unknown> {
  const { job, kiln } = v;
  const f = job.fields;
  const status = sshStatus(v);
  const c = status === 'active' ? (v.session?.connection ?? null) : null;
  const connection = c === null ? {} : { customer_access: { host: c.host, port: c.port }, 'cluster.local': { host: c.host, port: c.port } };
  const containers = Array.isArray(f.ssh_containers) ? (f.ssh_containers as { name: string; jail: boolean }[]) : [];
  return {
    id: job.id,
    created: job.createdAt,
    job_type: job.jobType,
    artifact_id: job.artifactId,
    public_key_id: f.public_key_id,
    image_root_archive_name: f.image_root_archive_name,
    enable_debug: f.enable_debug,
    build_env_size: f.build_env_size,
    job_mem_size: f.job_mem_size,
    kernel_file_name: f.kernel_file_name,
    initrd_file_name: f.initrd_file_name,
    kernel_parameters_file_name: f.kernel_parameters_file_name,
    require_dkms: f.require_dkms,
    arch: f.arch,
    status: v.status,
    resultant_image_id: job.resultantImageId,
    ssh_containers: containers.map((s) => ({ name: s.name, jail: s.jail, status, connection_info: connection })),
    // Kubernetes names in IMS; Kiln runs the job on its own queue: the job's id, no service, configmap, claim or secret.
    kubernetes_job: job.id,
    kubernetes_service: '',
    kubernetes_configmap: '',
    kubernetes_pvc: '',
    kubernetes_secret: '',
    kubernetes_namespace: 'kiln',
    remote_build_node: kiln?.workerId ?? '',
    // Kiln's own view of the job (ignored by IMS clients): why it failed, where its log is.
    kiln: kiln === null ? null : { status: kiln.status, stage: kiln.stage, error: kiln.error, logs: `/api/v1/jobs/${job.id}/logs` },
  };
}
