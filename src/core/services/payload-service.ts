// Payloads: named parameter bundles with a schema (ncore-api payloads), and which one a machine gets.
import type { Clock, Store } from '../ports.js';

export class PayloadService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}
}
