// IMS's request schemas (marshmallow in the original), with Kiln's additions to its enums: Kiln's
// own recipe kinds build through IMS too, and Debian-family distributions can be named.
import { ARCHES } from '../../core/types.js';
import { RECIPE_KINDS } from '../../core/recipes/recipe.js';
import type { Schema } from './ims-fields.js';

/** IMS's recipe types, then Kiln's kinds (kiwi-ng is both). */
export const RECIPE_TYPES = ['kiwi-ng', 'packer', ...RECIPE_KINDS.filter((k) => k !== 'kiwi-ng')] as const;
export const LINUX_DISTRIBUTIONS = ['sles12', 'sles15', 'centos7', 'debian', 'ubuntu', 'other'] as const;
export const IMS_JOB_STATUSES = ['creating', 'fetching_image', 'fetching_recipe', 'waiting_for_repos', 'building_image', 'packaging_artifacts', 'waiting_on_user', 'error', 'success'] as const;
export type ImsJobStatus = (typeof IMS_JOB_STATUSES)[number];

const arch = { field: { kind: 'string', oneOf: ARCHES } } as const;

export const RecipeCreate: Schema = {
  name: { field: { kind: 'string', min: 1 }, required: true },
  recipe_type: { field: { kind: 'string', oneOf: RECIPE_TYPES }, required: true },
  linux_distribution: { field: { kind: 'string', oneOf: LINUX_DISTRIBUTIONS }, required: true },
  link: { field: { kind: 'link', nullable: true } },
  template_dictionary: { field: { kind: 'template' } },
  require_dkms: { field: { kind: 'bool' } },
  arch,
};

export const RecipePatch: Schema = {
  link: { field: { kind: 'link' } },
  arch,
  require_dkms: { field: { kind: 'bool' } },
  template_dictionary: { field: { kind: 'template' } },
};

export const ImageCreate: Schema = {
  name: { field: { kind: 'string', min: 1 }, required: true },
  link: { field: { kind: 'link', nullable: true } },
  arch,
  metadata: { field: { kind: 'metadata' } },
};

export const ImagePatch: Schema = {
  link: { field: { kind: 'link' } },
  arch,
  metadata: { field: { kind: 'metadata-op' } },
};

export const PublicKeyCreate: Schema = {
  name: { field: { kind: 'string', min: 1 }, required: true },
  public_key: { field: { kind: 'string', min: 1, max: 16384 }, required: true },
};

export const JobCreate: Schema = {
  job_type: { field: { kind: 'string', oneOf: ['create', 'customize'] }, required: true },
  artifact_id: { field: { kind: 'uuid' }, required: true },
  public_key_id: { field: { kind: 'uuid' }, required: true },
  image_root_archive_name: { field: { kind: 'string', min: 1, max: 1024 }, required: true },
  enable_debug: { field: { kind: 'bool' } },
  build_env_size: { field: { kind: 'int', min: 1 } },
  kernel_file_name: { field: { kind: 'string', min: 1, max: 255 } },
  initrd_file_name: { field: { kind: 'string', min: 1, max: 255 } },
  kernel_parameters_file_name: { field: { kind: 'string', min: 1, max: 255 } },
  ssh_containers: { field: { kind: 'ssh-containers' } },
  require_dkms: { field: { kind: 'bool' } },
  job_mem_size: { field: { kind: 'int', min: 1 } },
};

export const JobPatch: Schema = {
  status: { field: { kind: 'string', oneOf: IMS_JOB_STATUSES } },
  resultant_image_id: { field: { kind: 'uuid' } },
};

export const Undelete: Schema = {
  operation: { field: { kind: 'string', oneOf: ['undelete'] }, required: true },
};
