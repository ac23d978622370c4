// Every job type Kiln knows, in one typed registry: `JobTypeName` is derived from it, so a switch
// or a Record over job types stops compiling until it handles a newly added one.
import type { BlobStore, Clock, IdSource, Store } from '../core/ports.js';
import { jobRegistry } from './job-types.js';
import { selfTestJob } from './self-test-job.js';

/** What job types may use; builders construct the core services they need from these. */
export interface JobTypeDeps {
  store: Store;
  blobs: BlobStore;
  clock: Clock;
  ids: IdSource;
}

export function kilnJobTypes(_deps: JobTypeDeps) {
  return jobRegistry([selfTestJob]);
}

export type KilnJobTypes = ReturnType<typeof kilnJobTypes>;
export type JobTypeName = keyof KilnJobTypes;
