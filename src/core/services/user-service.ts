// Users (people who log in or own images) and their login sessions. (Stub: being written.)
import type { Clock, IdSource, Store } from '../ports.js';
import type { Role } from '../types.js';

export interface UserServiceOptions {
  /** Role of a user created by their first login. */
  defaultRole: Role;
  sessionTtlHours: number;
}

export class UserService {
  constructor(
    protected readonly store: Store,
    protected readonly clock: Clock,
    protected readonly ids: IdSource,
    protected readonly opts: UserServiceOptions,
  ) {}
}
