// The private PostgreSQL cluster tests use; one implementation, shared with `npm run bench`.
export { findPgBin, pgUnavailableReason, startPgCluster, type PgCluster } from '../../scripts/pg-cluster.mjs';
