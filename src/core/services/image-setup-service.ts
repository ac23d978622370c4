// Image setups (frozen image versions a management OS writes) and each machine's FIFO boot queue. (Stub: being written.)
import type { Clock, IdSource, Store } from '../ports.js';

export class ImageSetupService {
  constructor(
    protected readonly store: Store,
    protected readonly clock: Clock,
    protected readonly ids: IdSource,
  ) {}
}
