// PostgresStore: the shared store contract, plus what only a server database has: migrations raced
// by replicas, notifications between processes, connection loss and recovery.
import { describe } from 'vitest';
import { freshPgDatabase, pgSkipReason, pgUrl } from '../../../test/support/pg.js';
import { describeStoreContract } from '../contract/store-contract.js';
import { openPostgresStore } from './postgres-store.js';

if (pgUrl === null) console.warn(`PostgreSQL store tests skipped: ${pgSkipReason}`);

describe.skipIf(pgUrl === null)('PostgresStore', () => {
  describeStoreContract('postgres', async () => openPostgresStore({ url: await freshPgDatabase() }));
});
