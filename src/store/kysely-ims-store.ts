// The ImsStore on Kysely, shared by every dialect. Reached through KyselyStore.ims, which binds it to
// the store's database or, inside a transaction, to that transaction.
import { sql, type Kysely } from 'kysely';
import { KilnError } from '../core/kiln-error.js';
import type { ImsImage, ImsJob, ImsJobType, ImsLink, ImsObject, ImsObjectMove, ImsRecipe, ImsStore, ImsTemplateEntry } from '../core/ims/ims-records.js';
import type { Arch } from '../core/types.js';
import type { Database } from './schema.js';

export class KyselyImsStore implements ImsStore {
  /** `db` may be a transaction: multi-statement writes then join it (a failure is left to its owner to roll back). */
  constructor(
    private readonly db: Kysely<Database>,
    private readonly isUniqueViolation: (err: unknown) => boolean,
  ) {}

  private atomic<T>(fn: (db: Kysely<Database>) => Promise<T>): Promise<T> {
    return this.db.isTransaction ? fn(this.db) : this.db.transaction().execute(fn);
  }

  private async created<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      // Ids are chosen by Kiln, so a clash is a caller's mistake; say so with a code, not a driver error.
      if (this.isUniqueViolation(err)) throw new KilnError('KILN_IMS_CONFLICT', `${what} exists`);
      throw err;
    }
  }

  // ---------------------------------------------------------------- objects

  async putObject(o: ImsObject): Promise<ImsObject> {
    const { bucket: _b, key: _k, ...rest } = objectRow(o);
    await this.db.insertInto('ims_objects').values(objectRow(o)).onConflict((oc) => oc.columns(['bucket', 'key']).doUpdateSet(rest)).execute();
    return (await this.getObject(o.bucket, o.key))!;
  }

  async getObject(bucket: string, key: string): Promise<ImsObject | null> {
    const r = await this.db.selectFrom('ims_objects').selectAll().where('bucket', '=', bucket).where('key', '=', key).executeTakeFirst();
    return r === undefined ? null : toObject(r);
  }

  async listObjects(bucket: string, prefix: string): Promise<ImsObject[]> {
    let q = this.db.selectFrom('ims_objects').selectAll().where('bucket', '=', bucket);
    // Not LIKE: `%` and `_` are ordinary characters in keys. Both sides count characters, on both dialects.
    if (prefix !== '') q = q.where(sql<string>`substr(${sql.ref('key')}, 1, length(cast(${prefix} as text)))`, '=', prefix);
    return (await q.orderBy('key').execute()).map(toObject);
  }

  async deleteObject(bucket: string, key: string): Promise<boolean> {
    const res = await this.db.deleteFrom('ims_objects').where('bucket', '=', bucket).where('key', '=', key).executeTakeFirst();
    return res.numDeletedRows > 0n;
  }

  async moveObjects(moves: readonly ImsObjectMove[]): Promise<void> {
    if (moves.length === 0) return;
    await this.atomic(async (db) => {
      // Check the whole batch, in order, before writing anything: a caller that catches the error
      // inside its transaction then finds nothing half moved.
      const id = (bucket: string, key: string) => JSON.stringify([bucket, key]);
      const named = moves.flatMap((m) => [[m.bucket, m.from], [m.bucket, m.to]] as const);
      const rows = await db
        .selectFrom('ims_objects')
        .select(['bucket', 'key'])
        .where((eb) => eb.or(named.map(([bucket, key]) => eb.and([eb('bucket', '=', bucket), eb('key', '=', key)]))))
        .execute();
      const present = new Set(rows.map((r) => id(r.bucket, r.key)));
      for (const m of moves) {
        if (!present.delete(id(m.bucket, m.from))) throw new KilnError('KILN_IMS_OBJECT_NOT_FOUND', `no object ${m.bucket}/${m.from}`);
        if (present.has(id(m.bucket, m.to))) throw new KilnError('KILN_IMS_OBJECT_EXISTS', `object ${m.bucket}/${m.to} exists`);
        present.add(id(m.bucket, m.to));
      }
      for (const m of moves) {
        try {
          await db.updateTable('ims_objects').set({ key: m.to }).where('bucket', '=', m.bucket).where('key', '=', m.from).execute();
        } catch (err) {
          // Another writer took `to` since the check.
          if (this.isUniqueViolation(err)) throw new KilnError('KILN_IMS_OBJECT_EXISTS', `object ${m.bucket}/${m.to} exists`);
          throw err;
        }
      }
    });
  }

  // ---------------------------------------------------------------- recipes

  async createRecipe(r: ImsRecipe): Promise<ImsRecipe> {
    await this.created(`IMS recipe ${r.id}`, () => this.db.insertInto('ims_recipes').values(recipeRow(r)).execute());
    return (await this.getRecipe(r.id))!;
  }

  async getRecipe(id: string): Promise<ImsRecipe | null> {
    const r = await this.db.selectFrom('ims_recipes').selectAll().where('id', '=', id).executeTakeFirst();
    return r === undefined ? null : toRecipe(r);
  }

  async listRecipes(filter: { deleted: boolean }): Promise<ImsRecipe[]> {
    const rows = await this.db
      .selectFrom('ims_recipes')
      .selectAll()
      .where('deleted_at', filter.deleted ? 'is not' : 'is', null)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(toRecipe);
  }

  async findRecipeByLinkPath(path: string): Promise<ImsRecipe | null> {
    const r = await this.db.selectFrom('ims_recipes').selectAll().where('link_path', '=', path).orderBy('created_at').orderBy('id').executeTakeFirst();
    return r === undefined ? null : toRecipe(r);
  }

  async replaceRecipe(r: ImsRecipe): Promise<ImsRecipe> {
    const { id, created_at: _c, ...rest } = recipeRow(r);
    const res = await this.db.updateTable('ims_recipes').set(rest).where('id', '=', id).executeTakeFirst();
    if (res.numUpdatedRows === 0n) throw new KilnError('KILN_IMS_RECORD_NOT_FOUND', `no IMS recipe ${id}`);
    return (await this.getRecipe(id))!;
  }

  async deleteRecipe(id: string): Promise<boolean> {
    return (await this.db.deleteFrom('ims_recipes').where('id', '=', id).executeTakeFirst()).numDeletedRows > 0n;
  }

  // ---------------------------------------------------------------- images

  async createImage(i: ImsImage): Promise<ImsImage> {
    await this.created(`IMS image ${i.id}`, () => this.db.insertInto('ims_images').values(imageRow(i)).execute());
    return (await this.getImage(i.id))!;
  }

  async getImage(id: string): Promise<ImsImage | null> {
    const r = await this.db.selectFrom('ims_images').selectAll().where('id', '=', id).executeTakeFirst();
    return r === undefined ? null : toImage(r);
  }

  async listImages(filter: { deleted: boolean }): Promise<ImsImage[]> {
    const rows = await this.db
      .selectFrom('ims_images')
      .selectAll()
      .where('deleted_at', filter.deleted ? 'is not' : 'is', null)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(toImage);
  }

  async findImageByLinkPath(path: string): Promise<ImsImage | null> {
    const r = await this.db.selectFrom('ims_images').selectAll().where('link_path', '=', path).orderBy('created_at').orderBy('id').executeTakeFirst();
    return r === undefined ? null : toImage(r);
  }

  async replaceImage(i: ImsImage): Promise<ImsImage> {
    const { id, created_at: _c, ...rest } = imageRow(i);
    const res = await this.db.updateTable('ims_images').set(rest).where('id', '=', id).executeTakeFirst();
    if (res.numUpdatedRows === 0n) throw new KilnError('KILN_IMS_RECORD_NOT_FOUND', `no IMS image ${id}`);
    return (await this.getImage(id))!;
  }

  async deleteImage(id: string): Promise<boolean> {
    return (await this.db.deleteFrom('ims_images').where('id', '=', id).executeTakeFirst()).numDeletedRows > 0n;
  }

  // ---------------------------------------------------------------- jobs

  async createJob(j: ImsJob): Promise<ImsJob> {
    await this.created(`IMS job ${j.id}`, () => this.db.insertInto('ims_jobs').values(jobRow(j)).execute());
    return (await this.getJob(j.id))!;
  }

  async getJob(id: string): Promise<ImsJob | null> {
    const r = await this.db.selectFrom('ims_jobs').selectAll().where('id', '=', id).executeTakeFirst();
    return r === undefined ? null : toJob(r);
  }

  async listJobs(): Promise<ImsJob[]> {
    return (await this.db.selectFrom('ims_jobs').selectAll().orderBy('created_at').orderBy('id').execute()).map(toJob);
  }

  async listUnfinishedJobs(): Promise<ImsJob[]> {
    const rows = await this.db.selectFrom('ims_jobs').selectAll().where('resultant_image_id', 'is', null).orderBy('created_at').orderBy('id').execute();
    return rows.map(toJob);
  }

  async setJobResult(id: string, resultantImageId: string): Promise<boolean> {
    // Conditional on "not set yet", so of replicas racing to register a result exactly one wins.
    const res = await this.db
      .updateTable('ims_jobs')
      .set({ resultant_image_id: resultantImageId })
      .where('id', '=', id)
      .where('resultant_image_id', 'is', null)
      .executeTakeFirst();
    if (res.numUpdatedRows > 0n) return true;
    if ((await this.getJob(id)) === null) throw new KilnError('KILN_IMS_RECORD_NOT_FOUND', `no IMS job ${id}`);
    return false;
  }

  async deleteJob(id: string): Promise<boolean> {
    return (await this.db.deleteFrom('ims_jobs').where('id', '=', id).executeTakeFirst()).numDeletedRows > 0n;
  }
}

// ---------------------------------------------------------------- row mapping

const parse = <T>(s: string): T => JSON.parse(s) as T;

function linkColumns(link: ImsLink | null): { link: string | null; link_path: string | null } {
  return { link: link === null ? null : JSON.stringify(link), link_path: link?.path ?? null };
}

function objectRow(o: ImsObject): Database['ims_objects'] {
  return { bucket: o.bucket, key: o.key, sha256: o.sha256, size: o.size, md5: o.md5, content_type: o.contentType, created_at: o.createdAt };
}

function toObject(r: Database['ims_objects']): ImsObject {
  // PostgreSQL returns bigint as a string.
  return { bucket: r.bucket, key: r.key, sha256: r.sha256, size: Number(r.size), md5: r.md5, contentType: r.content_type, createdAt: r.created_at };
}

function recipeRow(r: ImsRecipe): Database['ims_recipes'] {
  return {
    id: r.id, name: r.name, recipe_type: r.recipeType, linux_distribution: r.linuxDistribution, template_dictionary: JSON.stringify(r.templateDictionary),
    require_dkms: r.requireDkms ? 1 : 0, arch: r.arch, ...linkColumns(r.link), created_at: r.createdAt, deleted_at: r.deletedAt,
  };
}

function toRecipe(r: Database['ims_recipes']): ImsRecipe {
  return {
    id: r.id, name: r.name, recipeType: r.recipe_type, linuxDistribution: r.linux_distribution, templateDictionary: parse<ImsTemplateEntry[]>(r.template_dictionary),
    requireDkms: Number(r.require_dkms) === 1, arch: r.arch as Arch, link: r.link === null ? null : parse<ImsLink>(r.link), createdAt: r.created_at, deletedAt: r.deleted_at,
  };
}

function imageRow(i: ImsImage): Database['ims_images'] {
  return { id: i.id, name: i.name, arch: i.arch, metadata: JSON.stringify(i.metadata), ...linkColumns(i.link), created_at: i.createdAt, deleted_at: i.deletedAt };
}

function toImage(r: Database['ims_images']): ImsImage {
  return {
    id: r.id, name: r.name, arch: r.arch as Arch, metadata: parse<Record<string, string>>(r.metadata), link: r.link === null ? null : parse<ImsLink>(r.link),
    createdAt: r.created_at, deletedAt: r.deleted_at,
  };
}

function jobRow(j: ImsJob): Database['ims_jobs'] {
  return {
    id: j.id, job_type: j.jobType, artifact_id: j.artifactId, target_image_id: j.targetImageId, resultant_image_id: j.resultantImageId,
    fields: JSON.stringify(j.fields), created_at: j.createdAt,
  };
}

function toJob(r: Database['ims_jobs']): ImsJob {
  return {
    id: r.id, jobType: r.job_type as ImsJobType, artifactId: r.artifact_id, targetImageId: r.target_image_id, resultantImageId: r.resultant_image_id,
    fields: parse<Record<string, unknown>>(r.fields), createdAt: r.created_at,
  };
}
