// Cray IMS records as Kiln keeps them: IMS's own shapes (recipes and images with S3-style links that
// may be set after the record exists, soft delete with a `deleted` time) and the object keys those
// links name. Object keys map `bucket/key` to an artifact (content-addressed blob), so "moving" an
// object under `deleted/` is a rename in one transaction, never a copy of bytes.
import type { Arch } from '../types.js';

/** IMS's ArtifactLinkRecord: where a record's content lives (`s3://<bucket>/<key>`). */
export interface ImsLink {
  path: string;
  etag: string;
  type: string;
}

export interface ImsObject {
  bucket: string;
  key: string;
  sha256: string;
  size: number;
  /** Hex MD5 of the bytes: IMS manifests carry it and clients verify downloads with it. */
  md5: string;
  contentType: string;
  createdAt: string;
}

export interface ImsTemplateEntry {
  key: string;
  value: string;
}

export interface ImsRecipe {
  id: string;
  name: string;
  /** IMS's `recipe_type` (kiwi-ng, packer) or a Kiln recipe kind. */
  recipeType: string;
  linuxDistribution: string;
  templateDictionary: ImsTemplateEntry[];
  requireDkms: boolean;
  arch: Arch;
  link: ImsLink | null;
  createdAt: string;
  deletedAt: string | null;
}

export interface ImsImage {
  id: string;
  name: string;
  arch: Arch;
  metadata: Record<string, string>;
  link: ImsLink | null;
  createdAt: string;
  deletedAt: string | null;
}

export const IMS_JOB_TYPES = ['create', 'customize'] as const;
export type ImsJobType = (typeof IMS_JOB_TYPES)[number];

/** An IMS job: the Kiln job with the same id does the work; this keeps what IMS clients sent. */
export interface ImsJob {
  /** Also the id of the Kiln job. */
  id: string;
  jobType: ImsJobType;
  /** The recipe (create) or image (customize) the job starts from. */
  artifactId: string;
  /** The id the resulting IMS image gets (chosen when the job is created). */
  targetImageId: string;
  /** Set once the result is registered as an IMS image. */
  resultantImageId: string | null;
  /** The JobRecord fields as IMS clients sent them (defaults applied). */
  fields: Record<string, unknown>;
  createdAt: string;
}

/** An object rename: `from` becomes `to` in the same bucket. */
export interface ImsObjectMove {
  bucket: string;
  from: string;
  to: string;
}

/**
 * IMS records in Kiln's store. Reached as `store.ims`, so a transaction of the Store covers them too
 * (a soft delete renames objects, marks the record and hides the Kiln image in one commit).
 */
export interface ImsStore {
  // objects
  /** Creates or replaces the object at `bucket/key`. */
  putObject(o: ImsObject): Promise<ImsObject>;
  getObject(bucket: string, key: string): Promise<ImsObject | null>;
  /** Objects of `bucket` whose key starts with `prefix`, by key. */
  listObjects(bucket: string, prefix: string): Promise<ImsObject[]>;
  /** True when there was one to delete. */
  deleteObject(bucket: string, key: string): Promise<boolean>;
  /**
   * Renames objects, all or none: KILN_IMS_OBJECT_NOT_FOUND when a `from` is missing, KILN_IMS_OBJECT_EXISTS
   * when a `to` is taken (the transaction of the caller, if any, is then left to roll back).
   */
  moveObjects(moves: readonly ImsObjectMove[]): Promise<void>;

  // recipes
  createRecipe(r: ImsRecipe): Promise<ImsRecipe>;
  getRecipe(id: string): Promise<ImsRecipe | null>;
  /** Live recipes, or with `deleted` the soft-deleted ones; oldest first. */
  listRecipes(filter: { deleted: boolean }): Promise<ImsRecipe[]>;
  /** Replaces every field but id and createdAt; KILN_IMS_RECORD_NOT_FOUND. */
  replaceRecipe(r: ImsRecipe): Promise<ImsRecipe>;
  deleteRecipe(id: string): Promise<boolean>;

  // images
  createImage(i: ImsImage): Promise<ImsImage>;
  getImage(id: string): Promise<ImsImage | null>;
  listImages(filter: { deleted: boolean }): Promise<ImsImage[]>;
  /** The live or deleted image whose link has this path, if any (IMS: link paths are unique). */
  findImageByLinkPath(path: string): Promise<ImsImage | null>;
  findRecipeByLinkPath(path: string): Promise<ImsRecipe | null>;
  replaceImage(i: ImsImage): Promise<ImsImage>;
  deleteImage(id: string): Promise<boolean>;

  // jobs
  createJob(j: ImsJob): Promise<ImsJob>;
  getJob(id: string): Promise<ImsJob | null>;
  /** Oldest first. */
  listJobs(): Promise<ImsJob[]>;
  /** Jobs whose result is not registered yet. */
  listUnfinishedJobs(): Promise<ImsJob[]>;
  /** Sets the result once; false when it was already set (another replica got there first). */
  setJobResult(id: string, resultantImageId: string): Promise<boolean>;
  deleteJob(id: string): Promise<boolean>;
}
