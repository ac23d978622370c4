// Cray IMS recipes, images and public keys on Kiln's data. An IMS image with a link is a Kiln image
// `ims-<id>` whose version 1 holds the manifest's artifacts (so profiles can boot it and customize can
// open it); an IMS public key is a Kiln public key. Soft delete renames the object keys under
// `deleted/` and hides the Kiln image in the same transaction; undelete reverses both; purge and v2's
// hard delete remove the records and let the bytes go once nothing else refers to them.
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { KilnError } from '../../core/kiln-error.js';
import type { BlobStore, Clock, IdSource, Store } from '../../core/ports.js';
import type { ImsImage, ImsLink, ImsObject, ImsObjectMove, ImsRecipe, ImsTemplateEntry } from '../../core/ims/ims-records.js';
import { buildImageManifest, manifestArtifact, MANIFEST_TYPES } from '../../core/recipes/image-manifest.js';
import { RecipeInspector } from '../../core/recipes/recipe-inspector.js';
import { RECIPE_KINDS, type RecipeKind } from '../../core/recipes/recipe.js';
import { ImageService } from '../../core/services/image-service.js';
import { PublicKeyService } from '../../core/services/public-key-service.js';
import type { RecipeService } from '../../core/services/recipe-service.js';
import type { Arch, ArtifactRole, PublicKey } from '../../core/types.js';
import { isArtifactName, validateCmdline } from '../../core/validate.js';
import { ImsValidationError, parseFields, type FieldErrors, type ParsedLink, type Schema } from './ims-fields.js';
import {
  DELETED_MANIFEST_TYPE, deletedKey, linkTo, MANIFEST_MEDIA_TYPE, manifestDocument, manifestEntries, ManifestProblem, MAX_MANIFEST_BYTES, parseManifest, parseS3Path,
  roleOfType, undeletedKey, type ManifestEntry, type ObjectRef,
} from './ims-links.js';
import { ImsObjects } from './ims-objects.js';
import * as S from './ims-schemas.js';

export interface ImsSettings {
  /** Bucket of recipe archives (IMS: `ims`). */
  recipeBucket: string;
  /** Bucket of image artifacts and manifests (IMS: `boot-images`). */
  imageBucket: string;
}

export interface ImsDeps {
  store: Store;
  blobs: BlobStore;
  clock: Clock;
  ids: IdSource;
  recipes: RecipeService;
}

const NOT_FOUND = 'Requested resource does not exist. Re-run request with valid ID.';
const MAX_PARAMETERS_BYTES = 4096;

/** The Kiln image (and recipe) an IMS record stands for. */
export const kilnNameOf = (imsId: string): string => `ims-${imsId}`;

/** The body's known fields, converted; KILN_IMS_INVALID (422) with marshmallow-style `errors`. */
export function readFields(body: unknown, schema: Schema): Record<string, unknown> {
  try {
    return parseFields(body, schema);
  } catch (err) {
    if (err instanceof ImsValidationError) throw invalid(err.errors);
    throw err;
  }
}

export function invalid(errors: FieldErrors, detail = 'The request was not valid. See the errors for details.'): KilnError {
  return new KilnError('KILN_IMS_INVALID', detail, { errors });
}

export function notFound(): KilnError {
  return new KilnError('KILN_IMS_RECORD_NOT_FOUND', NOT_FOUND);
}

const linkInvalid = (message: string) => invalid({ link: [message] });

/** The Kiln recipe kind an IMS recipe type builds with; null for types Kiln cannot build (packer). */
export function kilnKindOf(recipeType: string): RecipeKind | null {
  return (RECIPE_KINDS as readonly string[]).includes(recipeType) ? (recipeType as RecipeKind) : null;
}

/** One artifact of a job's result, as the IMS object `<image id>/<key>`. */
export interface ResultEntry {
  key: string;
  type: string;
  md5: string;
  sha256: string;
  size: number;
  mediaType: string;
}

interface LinkPlan {
  ref: ObjectRef;
  entries: { name: string; role: ArtifactRole; sha256: string; size: number; md5: string; type: string }[];
  cmdline: string;
}

export class ImsRecordsService {
  readonly objects: ImsObjects;
  private readonly images: ImageService;
  private readonly keys: PublicKeyService;

  constructor(
    private readonly deps: ImsDeps,
    readonly settings: ImsSettings,
  ) {
    this.objects = new ImsObjects(deps.store, deps.blobs, deps.clock, deps.ids);
    this.images = new ImageService(deps.store, deps.blobs, deps.clock, deps.ids);
    this.keys = new PublicKeyService(deps.store, deps.clock, deps.ids);
  }

  private now(): string {
    return this.deps.clock.now().toISOString();
  }

  private get store(): Store {
    return this.deps.store;
  }

  newId(): string {
    return this.deps.ids.id();
  }

  // ---------------------------------------------------------------- recipes

  async createRecipe(body: unknown): Promise<ImsRecipe> {
    const f = readFields(body, S.RecipeCreate);
    const id = this.deps.ids.id();
    const recipe: ImsRecipe = {
      id, name: f.name as string, recipeType: f.recipe_type as string, linuxDistribution: f.linux_distribution as string,
      templateDictionary: (f.template_dictionary as ImsTemplateEntry[] | undefined) ?? [], requireDkms: (f.require_dkms as boolean | undefined) ?? true,
      arch: (f.arch as Arch | undefined) ?? 'x86_64', link: null, createdAt: this.now(), deletedAt: null,
    };
    const link = f.link as ParsedLink | null | undefined;
    if (link === undefined || link === null) return this.store.ims.createRecipe(recipe);
    recipe.link = await this.checkRecipeLink(link, recipe);
    return this.linkRecipe(recipe, true);
  }

  listRecipes(deleted = false): Promise<ImsRecipe[]> {
    return this.store.ims.listRecipes({ deleted });
  }

  async getRecipe(id: string, deleted = false): Promise<ImsRecipe> {
    const r = await this.store.ims.getRecipe(id);
    if (r === null || (r.deletedAt !== null) !== deleted) throw notFound();
    return r;
  }

  async patchRecipe(id: string, body: unknown): Promise<ImsRecipe> {
    const f = readFields(body, S.RecipePatch);
    const cur = await this.getRecipe(id);
    const next: ImsRecipe = { ...cur };
    if (f.arch !== undefined) next.arch = f.arch as Arch;
    if (f.require_dkms !== undefined) next.requireDkms = f.require_dkms as boolean;
    if (f.template_dictionary !== undefined) next.templateDictionary = f.template_dictionary as ImsTemplateEntry[];
    const link = f.link as ParsedLink | undefined;
    if (link !== undefined) {
      if (cur.link !== null && !sameLink(cur.link, link)) throw conflict(`recipe ${id} already has a link to ${cur.link.path}`);
      if (cur.link === null) {
        next.link = await this.checkRecipeLink(link, next);
        return this.linkRecipe(next, false);
      }
    }
    return this.store.ims.replaceRecipe(next);
  }

  /**
   * Stores a recipe with a newly set link, checking again under locks (the recipe's, then the link
   * path's) that no other recipe took the path and, for a patch, that no other link was set meanwhile.
   */
  private linkRecipe(r: ImsRecipe, create: boolean): Promise<ImsRecipe> {
    const path = r.link!.path;
    return this.store.transaction((outer) => outer.transaction(async (tx) => {
      const other = await tx.ims.findRecipeByLinkPath(path);
      if (other !== null && other.id !== r.id) throw linkInvalid(`The link path is already used by recipe ${other.id}.`);
      if (create) return tx.ims.createRecipe(r);
      const cur = await tx.ims.getRecipe(r.id);
      if (cur === null || cur.deletedAt !== null) throw notFound();
      if (cur.link !== null && cur.link.path !== path) throw conflict(`recipe ${r.id} already has a link to ${cur.link.path}`);
      return tx.ims.replaceRecipe(r);
    }, { serialize: `ims-recipe-link:${path}` }), { serialize: `ims-recipe:${r.id}` });
  }

  /** The link names an existing object no other recipe links, and a recipe Kiln builds reads as one. */
  private async checkRecipeLink(link: ParsedLink, recipe: ImsRecipe): Promise<ImsLink> {
    const ref = parseS3Path(link.path);
    if (ref === null) throw invalid({ link: { path: ['Not an s3://<bucket>/<key> path.'] } });
    const other = await this.store.ims.findRecipeByLinkPath(link.path);
    if (other !== null && other.id !== recipe.id) throw linkInvalid(`The link path is already used by recipe ${other.id}.`);
    const o = await this.objects.find(ref);
    if (o === null) throw linkInvalid(`The artifact ${link.path} does not exist.`);
    const kind = kilnKindOf(recipe.recipeType);
    if (kind !== null) {
      // Checked now rather than when a job runs: a recipe Kiln cannot read is refused at once.
      const inspector = new RecipeInspector(kind, recipe.arch);
      const sink = new Writable({ write: (_c, _e, cb) => cb() });
      await pipeline(await this.deps.blobs.read(o.sha256), inspector, sink).catch((err: unknown) => {
        throw linkInvalid(err instanceof KilnError ? err.message : `The recipe archive cannot be read: ${(err as Error).message}`);
      });
    }
    return { path: link.path, etag: link.etag === '' ? o.md5 : link.etag, type: 's3' };
  }

  /**
   * The Kiln recipe a build of this IMS recipe runs: `ims-<id>`, (re)made from the linked object when
   * it is missing or stale (content, arch or kind changed since).
   */
  async kilnRecipeFor(r: ImsRecipe): Promise<string> {
    const kind = kilnKindOf(r.recipeType);
    if (kind === null) throw new KilnError('KILN_IMS_BAD_REQUEST', `recipe ${r.id} is of type ${r.recipeType}, which Kiln does not build (types it builds: ${RECIPE_KINDS.join(', ')})`);
    if (r.link === null) throw new KilnError('KILN_IMS_BAD_REQUEST', `recipe ${r.id} has no link; upload its archive and PATCH the link first`);
    const ref = parseS3Path(r.link.path);
    const o = ref === null ? null : await this.objects.find(ref);
    if (o === null) throw new KilnError('KILN_IMS_BAD_REQUEST', `the archive of recipe ${r.id} (${r.link.path}) does not exist`);
    const name = kilnNameOf(r.id);
    for (let tries = 0; ; tries++) {
      const existing = await this.store.getRecipe(name);
      if (existing !== null && existing.sha256 === o.sha256 && existing.arch === r.arch && existing.kind === kind) return name;
      try {
        if (existing !== null) await this.deps.recipes.delete(name, existing.revision);
        await this.deps.recipes.create({ name, kind, arch: r.arch, description: `Cray IMS recipe ${r.name.slice(0, 200)} (${r.id})` }, await this.deps.blobs.read(o.sha256));
        return name;
      } catch (err) {
        // Another job of the same recipe made it meanwhile: look again.
        const raced = err instanceof KilnError && (err.code === 'KILN_RECIPE_EXISTS' || err.code === 'KILN_RECIPE_NOT_FOUND' || err.code === 'KILN_PRECONDITION_FAILED');
        if (!raced || tries >= 3) throw err;
      }
    }
  }

  /** v3: soft delete; the archive moves under `deleted/`. */
  async deleteRecipe(id: string): Promise<void> {
    await this.store.transaction(async (tx) => {
      const r = await tx.ims.getRecipe(id);
      if (r === null || r.deletedAt !== null) throw notFound();
      const link = await this.moveLinked(tx, r.link, deletedKey);
      await tx.ims.replaceRecipe({ ...r, link, deletedAt: this.now() });
    }, { serialize: `ims-recipe:${id}` });
  }

  async undeleteRecipe(id: string): Promise<void> {
    await this.store.transaction(async (tx) => {
      const r = await tx.ims.getRecipe(id);
      if (r === null || r.deletedAt === null) throw notFound();
      const link = await this.moveLinked(tx, r.link, undeletedKey);
      await tx.ims.replaceRecipe({ ...r, link, deletedAt: null });
    }, { serialize: `ims-recipe:${id}` });
  }

  /** Purge (v3, a deleted recipe) or v2's hard delete (a live one; `cascade` removes its archive). */
  async removeRecipe(id: string, opts: { deleted: boolean; cascade: boolean }): Promise<void> {
    const freed = await this.store.transaction(async (tx) => {
      const r = await tx.ims.getRecipe(id);
      if (r === null || (r.deletedAt !== null) !== opts.deleted) throw notFound();
      const shas: string[] = [];
      const ref = r.link === null ? null : parseS3Path(r.link.path);
      if (opts.cascade && ref !== null) {
        const o = await tx.ims.getObject(ref.bucket, ref.key);
        if (o !== null && (await tx.ims.deleteObject(ref.bucket, ref.key))) shas.push(o.sha256);
      }
      const kiln = await tx.getRecipe(kilnNameOf(id));
      if (kiln !== null) {
        await tx.deleteRecipe(kiln.name, undefined);
        shas.push(kiln.sha256);
      }
      await tx.ims.deleteRecipe(id);
      return shas;
    }, { serialize: `ims-recipe:${id}` });
    await this.objects.collect(freed);
  }

  /** Renames the object a link names (when it exists: IMS goes on without it) and returns the new link. */
  private async moveLinked(tx: Store, link: ImsLink | null, rename: (key: string) => string): Promise<ImsLink | null> {
    const ref = link === null ? null : parseS3Path(link.path);
    if (link === null || ref === null) return link;
    const to = { bucket: ref.bucket, key: rename(ref.key) };
    if ((await tx.ims.getObject(ref.bucket, ref.key)) !== null) await tx.ims.moveObjects([{ bucket: ref.bucket, from: ref.key, to: to.key }]);
    return { ...link, path: `s3://${to.bucket}/${to.key}` };
  }

  // ---------------------------------------------------------------- images

  async createImage(body: unknown): Promise<ImsImage> {
    const f = readFields(body, S.ImageCreate);
    const image: ImsImage = {
      id: this.deps.ids.id(), name: f.name as string, arch: (f.arch as Arch | undefined) ?? 'x86_64',
      metadata: (f.metadata as Record<string, string> | undefined) ?? {}, link: null, createdAt: this.now(), deletedAt: null,
    };
    const link = f.link as ParsedLink | null | undefined;
    if (link === undefined || link === null) return this.store.ims.createImage(image);
    const plan = await this.planImageLink(link, image.id);
    return this.attach({ ...image, link: { path: link.path, etag: link.etag, type: 's3' } }, plan, true);
  }

  listImages(deleted = false): Promise<ImsImage[]> {
    return this.store.ims.listImages({ deleted });
  }

  async getImage(id: string, deleted = false): Promise<ImsImage> {
    const i = await this.store.ims.getImage(id);
    if (i === null || (i.deletedAt !== null) !== deleted) throw notFound();
    return i;
  }

  async patchImage(id: string, body: unknown): Promise<ImsImage> {
    const f = readFields(body, S.ImagePatch);
    const cur = await this.getImage(id);
    const next: ImsImage = { ...cur, metadata: { ...cur.metadata } };
    if (f.arch !== undefined && f.arch !== cur.arch && cur.link !== null) throw conflict(`image ${id} has a link: its artifacts are for ${cur.arch}, so its arch stays`);
    if (f.arch !== undefined) next.arch = f.arch as Arch;
    const op = f.metadata as { operation: 'set' | 'remove'; key: string; value?: string } | undefined;
    if (op !== undefined) {
      if (op.operation === 'set') next.metadata[op.key] = op.value!;
      else delete next.metadata[op.key];
    }
    const link = f.link as ParsedLink | undefined;
    if (link !== undefined) {
      if (cur.link !== null && !sameLink(cur.link, link)) throw conflict(`image ${id} already has a link to ${cur.link.path}`);
      if (cur.link === null) return this.attach({ ...next, link: { path: link.path, etag: link.etag, type: 's3' } }, await this.planImageLink(link, id), false);
    }
    return this.store.ims.replaceImage(next);
  }

  /**
   * Checks a manifest link as IMS does (the manifest and every artifact it lists exist, version
   * "1.0", exactly one rootfs) and works out the Kiln version it becomes.
   */
  private async planImageLink(link: ParsedLink, selfId: string): Promise<LinkPlan> {
    const ref = parseS3Path(link.path);
    if (ref === null) throw invalid({ link: { path: ['Not an s3://<bucket>/<key> path.'] } });
    const other = await this.store.ims.findImageByLinkPath(link.path);
    if (other !== null && other.id !== selfId) throw linkInvalid(`The link path is already used by image ${other.id}.`);
    const manifest = await this.objects.find(ref);
    if (manifest === null) throw linkInvalid(`The manifest ${link.path} does not exist.`);
    let entries: ManifestEntry[];
    try {
      entries = parseManifest(await this.objects.readText(manifest, MAX_MANIFEST_BYTES)).entries;
    } catch (err) {
      if (err instanceof ManifestProblem) throw err.status === 400 ? new KilnError('KILN_IMS_BAD_REQUEST', err.message) : linkInvalid(err.message);
      throw err;
    }
    const names = new Set<string>(['manifest.json']);
    const out: LinkPlan['entries'] = [];
    let cmdline = '';
    for (const e of entries) {
      const o = await this.objects.find(e.ref);
      if (o === null) throw linkInvalid(`The artifact s3://${e.ref.bucket}/${e.ref.key} listed in the manifest does not exist.`);
      out.push({ name: uniqueName(e.ref.key, names), role: roleOfType(e.type), sha256: o.sha256, size: o.size, md5: o.md5, type: e.type });
      if (e.type === MANIFEST_TYPES.parameters && o.size <= MAX_PARAMETERS_BYTES) cmdline = await this.bootParameters(o);
    }
    return { ref, entries: out, cmdline };
  }

  /** The boot parameters artifact as the version's kernel command line, when Kiln can use it as one. */
  private async bootParameters(o: ImsObject): Promise<string> {
    const text = (await this.objects.readText(o, MAX_PARAMETERS_BYTES)).trim().replace(/\s+/g, ' ');
    try {
      return validateCmdline(text);
    } catch {
      return '';
    }
  }

  /**
   * Stores the record with its link and, in the same transaction, the Kiln image `ims-<id>` with
   * version 1 holding the artifacts and a Kiln manifest (sha256, size, md5 of each).
   */
  private async attach(image: ImsImage, plan: LinkPlan, create: boolean): Promise<ImsImage> {
    const artifacts = plan.entries.map((e) => manifestArtifact({ name: e.name, role: e.role, type: e.type, sha256: e.sha256, md5: e.md5, size: e.size }));
    const doc = `${JSON.stringify(buildImageManifest(this.now(), artifacts), null, 2)}\n`;
    // The Kiln manifest is an artifact like the others (stored before the transaction; a failure leaves only an unused blob).
    const stored = await this.objects.storeDocument(doc, MANIFEST_MEDIA_TYPE);
    const path = image.link?.path ?? '';
    // Locks: the image's, then its link path's, so two records never take the same path at once.
    return this.store.transaction((outer) => outer.transaction(async (tx) => {
      const cur = await tx.ims.getImage(image.id);
      if (create ? cur !== null : cur === null || cur.deletedAt !== null) throw create ? conflict(`image ${image.id} exists`) : notFound();
      if (!create && cur!.link !== null) throw conflict(`image ${image.id} already has a link to ${cur!.link.path}`);
      const other = await tx.ims.findImageByLinkPath(path);
      if (other !== null && other.id !== image.id) throw linkInvalid(`The link path is already used by image ${other.id}.`);
      const images = new ImageService(tx, this.deps.blobs, this.deps.clock, this.deps.ids);
      const name = kilnNameOf(image.id);
      if ((await tx.getImage(name)) === null) await images.create({ name, description: `Cray IMS image ${image.name.slice(0, 200)}`, labels: { compat: 'ims' } });
      await images.createVersion(name, {
        version: '1', arch: image.arch, cmdline: plan.cmdline,
        metadata: { ims: { id: image.id, name: image.name.slice(0, 1024), manifest: image.link?.path ?? null }, manifest: stored.sha256 },
        artifacts: [...plan.entries.map((e) => ({ name: e.name, role: e.role, sha256: e.sha256 })), { name: 'manifest.json', role: 'other' as const, sha256: stored.sha256 }],
      });
      return create ? tx.ims.createImage(image) : tx.ims.replaceImage(image);
    }, { serialize: `ims-image-link:${path}` }), { serialize: `ims-image:${image.id}` });
  }

  /**
   * A job's result becomes an IMS image: objects `<id>/<key>` naming the built bytes, a manifest, the
   * record, and the job's resultant_image_id, in one transaction; a second caller finds it done.
   */
  async registerResult(image: ImsImage, entries: readonly ResultEntry[], jobId: string): Promise<void> {
    const bucket = this.settings.imageBucket;
    const list: ManifestEntry[] = entries.map((e) => ({ ref: { bucket, key: `${image.id}/${e.key}` }, type: e.type, md5: e.md5, etag: e.md5 }));
    const stored = await this.objects.storeDocument(manifestDocument(this.now(), list), MANIFEST_MEDIA_TYPE);
    const manifestRef = { bucket, key: `${image.id}/manifest.json` };
    await this.store.transaction(async (tx) => {
      const job = await tx.ims.getJob(jobId);
      if (job === null || job.resultantImageId !== null) return;
      for (const e of entries) await this.objects.record({ bucket, key: `${image.id}/${e.key}` }, e.sha256, e.size, e.md5, e.mediaType, tx);
      await this.objects.record(manifestRef, stored.sha256, stored.size, stored.md5, MANIFEST_MEDIA_TYPE, tx);
      await tx.ims.createImage({ ...image, link: linkTo(manifestRef, stored.md5) });
      await tx.ims.setJobResult(jobId, image.id);
    }, { serialize: `ims-job:${jobId}` });
  }

  /** v3: soft delete. Objects move under `deleted/`, a deleted manifest lists them, the Kiln image is hidden. */
  async deleteImage(id: string): Promise<void> {
    const image = await this.getImage(id);
    const name = kilnNameOf(id);
    const users = await this.store.imageUsers(name);
    if (users.length > 0) throw conflict(`image ${id} is booted by Kiln profiles ${users.join(', ')}; point them elsewhere first`);
    const plan = await this.softDeletePlan(image);
    const deletedManifest = plan === null ? null : await this.objects.storeDocument(plan.document, MANIFEST_MEDIA_TYPE);
    await this.store.transaction(async (tx) => {
      const cur = await tx.ims.getImage(id);
      if (cur === null || cur.deletedAt !== null) throw notFound();
      let link = cur.link;
      if (plan !== null && deletedManifest !== null) {
        await tx.ims.moveObjects(plan.moves);
        await this.objects.record(plan.manifestRef, deletedManifest.sha256, deletedManifest.size, deletedManifest.md5, DELETED_MANIFEST_TYPE, tx);
        link = linkTo(plan.manifestRef, deletedManifest.md5);
      }
      const kiln = await tx.getImage(name);
      if (kiln !== null && kiln.deletedAt === null) await tx.updateImage(name, { deletedAt: this.now() }, this.now(), undefined);
      await tx.ims.replaceImage({ ...cur, link, deletedAt: this.now() });
    }, { serialize: `ims-image:${id}` });
  }

  /**
   * What a soft delete moves: the manifest and every artifact it lists that exists (IMS deletes the
   * record even when its manifest is gone), and the deleted manifest recording where each went.
   */
  private async softDeletePlan(image: ImsImage): Promise<{ moves: ImsObjectMove[]; manifestRef: ObjectRef; document: string } | null> {
    const ref = image.link === null ? null : parseS3Path(image.link.path);
    const manifest = ref === null ? null : await this.objects.find(ref);
    if (ref === null || manifest === null) return null;
    // An unreadable manifest still moves itself.
    const entries = manifestEntries(await this.objects.readText(manifest, MAX_MANIFEST_BYTES).catch(() => '{}'));
    const moved: ManifestEntry[] = [];
    const seen = new Set<string>();
    for (const e of [...entries, { ref, type: DELETED_MANIFEST_TYPE, md5: manifest.md5, etag: manifest.md5 }]) {
      const id = `${e.ref.bucket}/${e.ref.key}`;
      const o = seen.has(id) ? null : await this.objects.find(e.ref);
      seen.add(id);
      if (o !== null) moved.push({ ...e, md5: o.md5, etag: o.md5, ref: { bucket: e.ref.bucket, key: deletedKey(e.ref.key) } });
    }
    const moves = moved.map((e) => ({ bucket: e.ref.bucket, from: undeletedKey(e.ref.key), to: e.ref.key }));
    const manifestRef = { bucket: ref.bucket, key: deletedKey(`${image.id}/deleted_manifest.json`) };
    return { moves, manifestRef, document: manifestDocument(this.now(), moved) };
  }

  async undeleteImage(id: string): Promise<void> {
    const image = await this.getImage(id, true);
    const ref = image.link === null ? null : parseS3Path(image.link.path);
    const o = ref === null ? null : await this.objects.find(ref);
    const entries = o === null ? [] : manifestEntries(await this.objects.readText(o, MAX_MANIFEST_BYTES).catch(() => '{}'));
    await this.store.transaction(async (tx) => {
      const cur = await tx.ims.getImage(id);
      if (cur === null || cur.deletedAt === null) throw notFound();
      let link = cur.link;
      if (ref !== null && o !== null) {
        await tx.ims.moveObjects(entries.map((e) => ({ bucket: e.ref.bucket, from: e.ref.key, to: undeletedKey(e.ref.key) })));
        await tx.ims.deleteObject(ref.bucket, ref.key);
        const original = entries.find((e) => e.type === DELETED_MANIFEST_TYPE);
        if (original !== undefined) link = linkTo({ bucket: original.ref.bucket, key: undeletedKey(original.ref.key) }, original.etag);
      }
      const kiln = await tx.getImage(kilnNameOf(id));
      if (kiln !== null && kiln.deletedAt !== null) await tx.updateImage(kiln.name, { deletedAt: null }, this.now(), undefined);
      await tx.ims.replaceImage({ ...cur, link, deletedAt: null });
    }, { serialize: `ims-image:${id}` });
    if (o !== null) await this.objects.collect([o.sha256]);
  }

  /**
   * Purge (v3, a deleted image: its moved objects go) or v2's hard delete (a live one: with `cascade`
   * the manifest and its artifacts go). Either way the record and the Kiln image `ims-<id>` go.
   */
  async removeImage(id: string, opts: { deleted: boolean; cascade: boolean }): Promise<void> {
    const image = await this.getImage(id, opts.deleted);
    const name = kilnNameOf(id);
    const users = await this.store.imageUsers(name);
    if (users.length > 0) throw conflict(`image ${id} is booted by Kiln profiles ${users.join(', ')}; point them elsewhere first`);
    const ref = image.link === null ? null : parseS3Path(image.link.path);
    const manifest = ref === null ? null : await this.objects.find(ref);
    const listed = manifest === null ? [] : manifestEntries(await this.objects.readText(manifest, MAX_MANIFEST_BYTES).catch(() => '{}'));
    const refs = opts.cascade && ref !== null ? [...listed.map((e) => e.ref), ref] : [];
    const freed = await this.store.transaction(async (tx) => {
      const cur = await tx.ims.getImage(id);
      if (cur === null || (cur.deletedAt !== null) !== opts.deleted) throw notFound();
      const shas: string[] = [];
      for (const r of refs) {
        const o = await tx.ims.getObject(r.bucket, r.key);
        if (o !== null && (await tx.ims.deleteObject(r.bucket, r.key))) shas.push(o.sha256);
      }
      const kiln = await tx.getImage(name);
      if (kiln !== null) {
        for (const v of await tx.listVersions(name)) shas.push(...v.artifacts.map((a) => a.sha256));
        await tx.purgeImage(name);
      }
      await tx.ims.deleteImage(id);
      return shas;
    }, { serialize: `ims-image:${id}` });
    await this.objects.collect(freed);
  }

  // ---------------------------------------------------------------- public keys

  async createPublicKey(body: unknown, owner: string | null): Promise<PublicKey> {
    const f = readFields(body, S.PublicKeyCreate);
    try {
      return await this.keys.create({ name: f.name as string, publicKey: f.public_key as string, owner });
    } catch (err) {
      if (!(err instanceof KilnError)) throw err;
      if (err.code === 'KILN_NAME_INVALID') throw invalid({ name: [`${err.message} (Kiln key names are lower-case letters, digits, ".", "_" and "-").`] });
      if (err.code === 'KILN_PUBLIC_KEY_EXISTS') throw invalid({ name: [err.message] });
      if (err.code === 'KILN_PUBLIC_KEY_INVALID') throw invalid({ public_key: [err.message] });
      throw err;
    }
  }

  listPublicKeys(deleted = false): Promise<PublicKey[]> {
    return this.store.listPublicKeys({ deleted });
  }

  async getPublicKey(id: string, deleted = false): Promise<PublicKey> {
    const k = await this.store.getPublicKey(id);
    if (k === null || (k.deletedAt !== null) !== deleted) throw notFound();
    return k;
  }

  async deletePublicKey(id: string): Promise<void> {
    await this.store.setPublicKeyDeleted((await this.getPublicKey(id)).id, this.now());
  }

  async undeletePublicKey(id: string): Promise<void> {
    try {
      await this.store.setPublicKeyDeleted((await this.getPublicKey(id, true)).id, null);
    } catch (err) {
      if (err instanceof KilnError && err.code === 'KILN_PUBLIC_KEY_EXISTS') throw conflict(err.message);
      throw err;
    }
  }

  async removePublicKey(id: string, deleted: boolean): Promise<void> {
    await this.store.purgePublicKey((await this.getPublicKey(id, deleted)).id);
  }
}

export function conflict(message: string): KilnError {
  return new KilnError('KILN_IMS_CONFLICT', message);
}

function sameLink(a: ImsLink, b: ParsedLink): boolean {
  return a.path === b.path && a.type === b.type;
}

/** A Kiln artifact name from an object key's last segment, unique within the version. */
function uniqueName(key: string, taken: Set<string>): string {
  const base = key.slice(key.lastIndexOf('/') + 1).replace(/[^A-Za-z0-9._+-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 100) || 'artifact';
  let name = isArtifactName(base) ? base : 'artifact';
  for (let n = 2; taken.has(name); n++) name = `${base}-${n}`;
  taken.add(name);
  return name;
}
