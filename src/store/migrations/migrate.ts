// Applying and inspecting the one migration set, on any dialect. Kysely's migrator takes a lock in
// the database (an advisory lock on PostgreSQL), so replicas starting together migrate once.
import { Migrator, type Kysely } from 'kysely';
import { KilnError } from '../../core/kiln-error.js';
import { migrationProvider, type DialectName } from './migrations.js';

export interface MigrationState {
  name: string;
  appliedAt: string | null;
}

function migrator(db: Kysely<unknown>, dialect: DialectName): Migrator {
  return new Migrator({ db, provider: migrationProvider(dialect) });
}

/** Each known migration and when it was applied; throws when the database is newer than this Kiln. */
export async function migrationStatus(db: Kysely<unknown>, dialect: DialectName): Promise<MigrationState[]> {
  const known = await migrator(db, dialect).getMigrations();
  const applied = new Set(known.filter((m) => m.executedAt !== undefined).map((m) => m.name));
  await assertNotNewer(db, applied);
  return known.map((m) => ({ name: m.name, appliedAt: m.executedAt?.toISOString() ?? null }));
}

async function assertNotNewer(db: Kysely<unknown>, knownApplied: Set<string>): Promise<void> {
  let rows: { name: string }[];
  try {
    rows = await db.selectFrom('kysely_migration' as never).select('name' as never).execute() as { name: string }[];
  } catch {
    return; // no migration table yet: an empty database
  }
  const unknown = rows.map((r) => r.name).filter((n) => !knownApplied.has(n));
  if (unknown.length > 0) {
    throw new KilnError('KILN_SCHEMA_NEWER', `the database has migrations this Kiln does not know (${unknown.join(', ')}); run a newer Kiln or migrate down with it`, { unknown });
  }
}

async function run(db: Kysely<unknown>, dialect: DialectName, step: (m: Migrator) => ReturnType<Migrator['migrateToLatest']>): Promise<string[]> {
  await migrationStatus(db, dialect);
  const { error, results } = await step(migrator(db, dialect));
  if (error !== undefined) {
    if (error instanceof KilnError) throw error;
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new KilnError('KILN_SCHEMA_MIGRATION_FAILED', `migration ${failed ?? '(setup)'} failed: ${error instanceof Error ? error.message : JSON.stringify(error)}`);
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** Applies every pending migration; returns the names applied (none when another replica did it). */
export function migrateToLatest(db: Kysely<unknown>, dialect: DialectName): Promise<string[]> {
  return run(db, dialect, (m) => m.migrateToLatest());
}

/** Reverts the last `steps` applied migrations, newest first; returns the names reverted. */
export async function migrateDown(db: Kysely<unknown>, dialect: DialectName, steps: number): Promise<string[]> {
  const done: string[] = [];
  for (let i = 0; i < steps; i++) {
    const r = await run(db, dialect, (m) => m.migrateDown());
    if (r.length === 0) break;
    done.push(...r);
  }
  return done;
}

/** For a Kiln told not to migrate: refuses to run on a schema that is behind (or ahead of) this code. */
export async function assertMigrated(db: Kysely<unknown>, dialect: DialectName): Promise<void> {
  const pending = (await migrationStatus(db, dialect)).filter((m) => m.appliedAt === null).map((m) => m.name);
  if (pending.length > 0) {
    throw new KilnError('KILN_SCHEMA_OUTDATED', `the database needs migrations ${pending.join(', ')}; run \`kiln db migrate\` (or start without --no-migrate)`, { pending });
  }
}
