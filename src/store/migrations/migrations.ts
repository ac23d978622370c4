// The one ordered migration set. Runs on every dialect; the few column types that differ come from `Dialect`.
import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

export type DialectName = 'sqlite' | 'postgres';

function serial(dialect: DialectName) {
  return dialect === 'sqlite' ? sql`integer primary key autoincrement` : sql`bigint generated always as identity primary key`;
}

function initial(dialect: DialectName): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('artifacts')
        .addColumn('sha256', 'text', (c) => c.primaryKey())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('media_type', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('images')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('labels', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('deleted_at', 'text')
        .addColumn('revision', 'integer', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('image_versions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('image', 'text', (c) => c.notNull().references('images.name').onDelete('cascade'))
        .addColumn('version', 'text', (c) => c.notNull())
        .addColumn('arch', 'text', (c) => c.notNull())
        .addColumn('cmdline', 'text', (c) => c.notNull())
        .addColumn('metadata', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('image_versions_image_version', ['image', 'version'])
        .execute();
      await db.schema
        .createTable('version_artifacts')
        .addColumn('version_id', 'text', (c) => c.notNull().references('image_versions.id').onDelete('cascade'))
        .addColumn('position', 'integer', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('sha256', 'text', (c) => c.notNull().references('artifacts.sha256'))
        .addPrimaryKeyConstraint('version_artifacts_pk', ['version_id', 'name'])
        .execute();
      await db.schema.createIndex('version_artifacts_sha256').on('version_artifacts').column('sha256').execute();
      await db.schema
        .createTable('channels')
        .addColumn('image', 'text', (c) => c.notNull().references('images.name').onDelete('cascade'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('version', 'text', (c) => c.notNull())
        .addColumn('revision', 'integer', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('channels_pk', ['image', 'name'])
        .execute();
      await db.schema
        .createTable('channel_history')
        .addColumn('seq', sql`${serial(dialect)}`)
        .addColumn('image', 'text', (c) => c.notNull().references('images.name').onDelete('cascade'))
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('from_version', 'text')
        .addColumn('to_version', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('channel_history_channel').on('channel_history').columns(['image', 'channel', 'seq']).execute();
      await db.schema
        .createTable('profiles')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('image', 'text', (c) => c.notNull())
        .addColumn('channel', 'text')
        .addColumn('version', 'text')
        .addColumn('kernel_args', 'text', (c) => c.notNull())
        .addColumn('template', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('revision', 'integer', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('profiles_image').on('profiles').column('image').execute();
      await db.schema
        .createTable('groups')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('selectors', 'text', (c) => c.notNull())
        .addColumn('profile', 'text', (c) => c.notNull().references('profiles.name'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('revision', 'integer', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('machines')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('uuid', 'text', (c) => c.unique())
        .addColumn('serial', 'text')
        .addColumn('hostname', 'text')
        .addColumn('labels', 'text', (c) => c.notNull())
        .addColumn('arch', 'text')
        .addColumn('firmware', 'text')
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('profile', 'text', (c) => c.references('profiles.name'))
        .addColumn('next_boot', 'text', (c) => c.references('profiles.name'))
        .addColumn('last_seen_at', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('revision', 'integer', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('machines_state').on('machines').column('state').execute();
      await db.schema
        .createTable('machine_macs')
        .addColumn('mac', 'text', (c) => c.primaryKey())
        .addColumn('machine_id', 'text', (c) => c.notNull().references('machines.id').onDelete('cascade'))
        .addColumn('position', 'integer', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('machine_macs_machine').on('machine_macs').column('machine_id').execute();
      await db.schema
        .createTable('boot_events')
        .addColumn('id', sql`${serial(dialect)}`)
        .addColumn('machine_id', 'text', (c) => c.notNull().references('machines.id').onDelete('cascade'))
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('detail', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('boot_events_machine').on('boot_events').columns(['machine_id', 'id']).execute();
      await db.schema
        .createTable('tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('last_used_at', 'text')
        .addColumn('revoked_at', 'text')
        .execute();
    },
    async down(db: Kysely<unknown>) {
      for (const t of ['tokens', 'boot_events', 'machine_macs', 'machines', 'groups', 'profiles', 'channel_history', 'channels', 'version_artifacts', 'image_versions', 'images', 'artifacts']) {
        await db.schema.dropTable(t).execute();
      }
    },
  };
}

/** Secrets every replica must share (the boot URL signing key), kept where all of them look. */
const secrets: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('secrets')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('value', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('secrets').execute();
  },
};

/**
 * What the compat layers (ncore-api, pixiecore, BAAS) need, as native Kiln data: payloads, users
 * and their sessions, image owners, image setups and the per-machine boot queue.
 */
function compat(dialect: DialectName): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('payloads')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('directory', 'text', (c) => c.notNull())
        .addColumn('schema', 'text', (c) => c.notNull())
        .addColumn('parameters', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('revision', 'integer', (c) => c.notNull())
        .execute();
      await db.schema.alterTable('machines').addColumn('payload', 'text', (c) => c.references('payloads.name')).execute();
      await db.schema.alterTable('machines').addColumn('next_boot_taken', 'text').execute();
      await db.schema.alterTable('machines').addColumn('next_boot_taken_at', 'text').execute();
      await db.schema.alterTable('profiles').addColumn('payload', 'text', (c) => c.references('payloads.name')).execute();
      await db.schema
        .createTable('users')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('display_name', 'text', (c) => c.notNull())
        .addColumn('email', 'text', (c) => c.unique())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('external_id', 'text', (c) => c.unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('revision', 'integer', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('sessions')
        .addColumn('hash', 'text', (c) => c.primaryKey())
        .addColumn('user_name', 'text', (c) => c.notNull().references('users.name').onDelete('cascade'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('sessions_user').on('sessions').column('user_name').execute();
      await db.schema.alterTable('tokens').addColumn('user_name', 'text', (c) => c.references('users.name').onDelete('cascade')).execute();
      await db.schema.alterTable('tokens').addColumn('machine_id', 'text', (c) => c.references('machines.id').onDelete('cascade')).execute();
      await db.schema.alterTable('images').addColumn('owner', 'text', (c) => c.references('users.name')).execute();
      await db.schema
        .createTable('image_setups')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('owner', 'text', (c) => c.references('users.name').onDelete('cascade'))
        .addColumn('images', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('revision', 'integer', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('boot_queue')
        .addColumn('seq', sql`${serial(dialect)}`)
        .addColumn('machine_id', 'text', (c) => c.notNull().references('machines.id').onDelete('cascade'))
        .addColumn('setup_id', 'text', (c) => c.notNull().references('image_setups.id').onDelete('cascade'))
        .addColumn('update_images', 'integer', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('popped_at', 'text')
        .execute();
      await db.schema.createIndex('boot_queue_machine').on('boot_queue').columns(['machine_id', 'seq']).execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('boot_queue').execute();
      await db.schema.dropTable('image_setups').execute();
      await db.schema.alterTable('images').dropColumn('owner').execute();
      await db.schema.alterTable('tokens').dropColumn('machine_id').execute();
      await db.schema.alterTable('tokens').dropColumn('user_name').execute();
      await db.schema.dropTable('sessions').execute();
      await db.schema.dropTable('users').execute();
      await db.schema.alterTable('profiles').dropColumn('payload').execute();
      for (const c of ['next_boot_taken_at', 'next_boot_taken', 'payload']) await db.schema.alterTable('machines').dropColumn(c).execute();
      await db.schema.dropTable('payloads').execute();
    },
  };
}

/**
 * The durable job queue (src/jobs): jobs with status, stage, progress, lease and result, and the
 * index of each job's log, whose bytes are blobs.
 */
function jobs(dialect: DialectName): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('jobs')
        .addColumn('seq', sql`${serial(dialect)}`)
        .addColumn('id', 'text', (c) => c.notNull().unique())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('stage', 'text')
        .addColumn('progress', 'integer')
        .addColumn('input', 'text', (c) => c.notNull())
        .addColumn('result', 'text')
        .addColumn('error', 'text')
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('max_attempts', 'integer', (c) => c.notNull())
        .addColumn('timeout_seconds', 'integer', (c) => c.notNull())
        .addColumn('priority', 'integer', (c) => c.notNull())
        .addColumn('run_after', 'text', (c) => c.notNull())
        .addColumn('worker_id', 'text')
        .addColumn('lease_expires_at', 'text')
        .addColumn('cancel_requested_at', 'text')
        .addColumn('created_by', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('started_at', 'text')
        .addColumn('finished_at', 'text')
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      // Claims scan queued jobs by priority then age; the lease sweep scans running ones by expiry.
      await db.schema.createIndex('jobs_claim').on('jobs').columns(['status', 'priority', 'seq']).execute();
      await db.schema.createIndex('jobs_lease').on('jobs').columns(['status', 'lease_expires_at']).execute();
      await db.schema.createIndex('jobs_type').on('jobs').columns(['type', 'seq']).execute();
      await db.schema
        .createTable('job_log_chunks')
        .addColumn('job_id', 'text', (c) => c.notNull().references('jobs.id').onDelete('cascade'))
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('start_byte', 'bigint', (c) => c.notNull())
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('sha256', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('job_log_chunks_pk', ['job_id', 'seq'])
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('job_log_chunks').execute();
      await db.schema.dropTable('jobs').execute();
    },
  };
}

/**
 * Recipes (image builds): a record per recipe, its file an artifact. The artifact reference keeps a
 * purge from collecting a recipe's file while the recipe exists.
 */
const recipes: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('recipes')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('arch', 'text', (c) => c.notNull())
      .addColumn('description', 'text', (c) => c.notNull())
      .addColumn('sha256', 'text', (c) => c.notNull().references('artifacts.sha256'))
      .addColumn('size', 'bigint', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addColumn('revision', 'integer', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('recipes_sha256').on('recipes').column('sha256').execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('recipes').execute();
  },
};

/**
 * OpenSSH public keys (soft-deleted like images; a name is unique among live keys) and the sessions
 * of customize jobs: where their sshd listens and whether the user said done, so an API replica can
 * tell a worker on another machine.
 */
const publicKeys: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('public_keys')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('owner', 'text', (c) => c.references('users.name').onDelete('cascade'))
      .addColumn('public_key', 'text', (c) => c.notNull())
      .addColumn('key_type', 'text', (c) => c.notNull())
      .addColumn('comment', 'text', (c) => c.notNull())
      .addColumn('fingerprint', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('deleted_at', 'text')
      .execute();
    await db.schema.createIndex('public_keys_live_name').on('public_keys').column('name').unique().where(sql.ref('deleted_at'), 'is', null).execute();
    await db.schema.createIndex('public_keys_owner').on('public_keys').column('owner').execute();
    await db.schema
      .createTable('customize_sessions')
      .addColumn('job_id', 'text', (c) => c.primaryKey())
      .addColumn('image', 'text', (c) => c.notNull())
      .addColumn('version', 'text', (c) => c.notNull())
      .addColumn('public_key_id', 'text', (c) => c.notNull())
      .addColumn('public_key_fingerprint', 'text', (c) => c.notNull())
      .addColumn('host', 'text')
      .addColumn('port', 'integer')
      .addColumn('user_name', 'text')
      .addColumn('host_key_fingerprint', 'text')
      .addColumn('done_requested_at', 'text')
      .addColumn('done_requested_by', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('customize_sessions').execute();
    await db.schema.dropTable('public_keys').execute();
  },
};

/**
 * Cray IMS records (src/core/ims): object keys naming artifacts, recipes, images and jobs as IMS
 * clients see them. Links are JSON with their path copied to a column, so a lookup by path (IMS's
 * "which record owns this S3 key") is an index read, not a scan of JSON.
 */
const ims: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('ims_objects')
      .addColumn('bucket', 'text', (c) => c.notNull())
      .addColumn('key', 'text', (c) => c.notNull())
      .addColumn('sha256', 'text', (c) => c.notNull())
      .addColumn('size', 'bigint', (c) => c.notNull())
      .addColumn('md5', 'text', (c) => c.notNull())
      .addColumn('content_type', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('ims_objects_pk', ['bucket', 'key'])
      .execute();
    // A purge asks whether any object still names an artifact.
    await db.schema.createIndex('ims_objects_sha256').on('ims_objects').column('sha256').execute();
    await db.schema
      .createTable('ims_recipes')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('recipe_type', 'text', (c) => c.notNull())
      .addColumn('linux_distribution', 'text', (c) => c.notNull())
      .addColumn('template_dictionary', 'text', (c) => c.notNull())
      .addColumn('require_dkms', 'integer', (c) => c.notNull())
      .addColumn('arch', 'text', (c) => c.notNull())
      .addColumn('link', 'text')
      .addColumn('link_path', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('deleted_at', 'text')
      .execute();
    await db.schema.createIndex('ims_recipes_link_path').on('ims_recipes').column('link_path').execute();
    await db.schema
      .createTable('ims_images')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('arch', 'text', (c) => c.notNull())
      .addColumn('metadata', 'text', (c) => c.notNull())
      .addColumn('link', 'text')
      .addColumn('link_path', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('deleted_at', 'text')
      .execute();
    await db.schema.createIndex('ims_images_link_path').on('ims_images').column('link_path').execute();
    await db.schema
      .createTable('ims_jobs')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('job_type', 'text', (c) => c.notNull())
      .addColumn('artifact_id', 'text', (c) => c.notNull())
      .addColumn('target_image_id', 'text', (c) => c.notNull())
      .addColumn('resultant_image_id', 'text')
      .addColumn('fields', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
  },
  async down(db: Kysely<unknown>) {
    for (const t of ['ims_jobs', 'ims_images', 'ims_recipes', 'ims_objects']) await db.schema.dropTable(t).execute();
  },
};

/**
 * Every boot moves a machine's state; an index on it turned each move into two more random page
 * writes (13 µs of the 37 µs a state change cost on SQLite, and no HOT updates on PostgreSQL). Only the
 * admin list filters on state, and a scan of the machines table serves that.
 */
const bootHotPath: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.dropIndex('machines_state').execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.createIndex('machines_state').on('machines').column('state').execute();
  },
};

export function migrationProvider(dialect: DialectName): MigrationProvider {
  return {
    getMigrations: () => Promise.resolve({
      '0001_initial': initial(dialect), '0002_secrets': secrets, '0003_compat': compat(dialect), '0004_jobs': jobs(dialect), '0005_recipes': recipes, '0006_public_keys': publicKeys,
      '0007_ims': ims,
      '0008_boot_hot_path': bootHotPath,
    }),
  };
}
