// Every job type Kiln knows, in one typed registry: `JobTypeName` is derived from it, so a switch
// or a Record over job types stops compiling until it handles a newly added one.
import type { BlobStore, Clock, IdSource, Store } from '../core/ports.js';
import { imageBuildJob, type ImageBuildSettings } from './builders/image-build-job.js';
import type { CustomizeSettings } from './customize/customize-settings.js';
import { imageCustomizeJob } from './customize/image-customize-job.js';
import { jobRegistry } from './job-types.js';
import { selfTestJob } from './self-test-job.js';

/** What job types may use; builders construct the core services they need from these. */
export interface JobTypeDeps {
  store: Store;
  blobs: BlobStore;
  clock: Clock;
  ids: IdSource;
  /** customize.* settings (default: sshd on 127.0.0.1, ports 32200-32299). */
  customize?: CustomizeSettings | undefined;
  /** Image build settings (default: package cache in <work root>/.cache, /bin/busybox for initrds). */
  builds?: ImageBuildSettings | undefined;
}

export function kilnJobTypes(deps: JobTypeDeps) {
  return jobRegistry([selfTestJob, imageCustomizeJob(deps), imageBuildJob(deps)]);
}

export type KilnJobTypes = ReturnType<typeof kilnJobTypes>;
export type JobTypeName = keyof KilnJobTypes;
