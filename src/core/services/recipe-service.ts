// Recipes: build instructions (a debootstrap spec, a root filesystem tar, an OCI image layout, a kiwi
// description) stored as an artifact with a record; checked while they stream in, so a bad one leaves
// nothing behind. Also decides whether a build may start (planBuild): what the build job then runs.
import { pipeline, type Readable } from 'node:stream';
import { KilnError } from '../kiln-error.js';
import type { BlobStore, Clock, ExpectedRevision, IdSource, Store } from '../ports.js';
import { BUILD_INITRDS, RECIPE_KINDS, type BuildRequest, type Recipe, type RecipeKind } from '../recipes/recipe.js';
import { RecipeInspector, type RecipeFacts } from '../recipes/recipe-inspector.js';
import { ARCHES, type Arch } from '../types.js';
import { validateCmdline, validateName, validateSha256, validateVersion } from '../validate.js';
import { ArtifactService } from './artifact-service.js';

export interface RecipeCreate {
  name: string;
  kind: string;
  arch?: string | undefined;
  description?: string | undefined;
  /** The upload's Content-Type; a default per kind otherwise. */
  mediaType?: string | undefined;
}

/** A build that may start: the recipe content is pinned, the architecture settled. */
export type PlannedBuild = BuildRequest & { recipeSha256: string; arch: Arch };

const MODULE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const MAX_DESCRIPTION = 1024;

function invalid(message: string): KilnError {
  return new KilnError('KILN_RECIPE_INVALID', message);
}

export class RecipeService {
  private readonly artifacts: ArtifactService;

  constructor(
    private readonly store: Store,
    private readonly blobs: BlobStore,
    private readonly clock: Clock,
    private readonly ids: IdSource,
  ) {
    this.artifacts = new ArtifactService(store, blobs, clock);
  }

  /** Stores the recipe file (checked as it streams) and its record. Nothing is kept when the file is refused. */
  async create(input: RecipeCreate, body: Readable): Promise<Recipe> {
    const name = validateName(input.name, 'recipe name');
    const kind = this.kindOf(input.kind);
    const arch = this.archOf(input.arch);
    const description = this.descriptionOf(input.description);
    if ((await this.store.getRecipe(name)) !== null) throw new KilnError('KILN_RECIPE_EXISTS', `recipe ${name} exists`);
    const { sha256, size } = await this.upload(kind, arch, body, input.mediaType);
    const at = this.clock.now().toISOString();
    return this.store.createRecipe({ id: this.ids.id(), name, kind, arch, description, sha256, size, createdAt: at, updatedAt: at, revision: 1 });
  }

  async list(): Promise<Recipe[]> {
    return this.store.listRecipes();
  }

  async get(name: string): Promise<Recipe> {
    const r = await this.store.getRecipe(name);
    if (r === null) throw new KilnError('KILN_RECIPE_NOT_FOUND', `no recipe ${JSON.stringify(name.slice(0, 80))}`);
    return r;
  }

  async update(name: string, patch: { description?: string | undefined }, expected: ExpectedRevision): Promise<Recipe> {
    const cur = await this.get(name);
    const description = patch.description === undefined ? cur.description : this.descriptionOf(patch.description);
    return this.store.replaceRecipe({ ...cur, description, updatedAt: this.clock.now().toISOString(), revision: cur.revision + 1 }, expected);
  }

  /** A new recipe file of the same kind; builds asked for earlier keep the content they pinned. */
  async replaceContent(name: string, body: Readable, expected: ExpectedRevision, mediaType?: string): Promise<Recipe> {
    const cur = await this.get(name);
    if (expected !== undefined && expected !== cur.revision) throw new KilnError('KILN_PRECONDITION_FAILED', `recipe ${name} was changed by someone else; fetch it again`);
    const { sha256, size } = await this.upload(cur.kind, cur.arch, body, mediaType);
    return this.store.replaceRecipe({ ...cur, sha256, size, updatedAt: this.clock.now().toISOString(), revision: cur.revision + 1 }, expected ?? cur.revision);
  }

  /** Removes the record; the file stays an artifact (like any upload no version uses). */
  async delete(name: string, expected: ExpectedRevision): Promise<void> {
    await this.store.deleteRecipe(name, expected);
  }

  /** The recipe file's bytes (the pinned content when `sha256` is given). */
  async read(name: string, sha256?: string): Promise<{ recipe: Recipe; sha256: string; body: Readable }> {
    const recipe = await this.get(name);
    const sha = sha256 === undefined ? recipe.sha256 : validateSha256(sha256);
    if ((await this.store.getArtifact(sha)) === null) throw new KilnError('KILN_ARTIFACT_NOT_FOUND', `recipe ${name}: its content ${sha} is no longer stored`);
    return { recipe, sha256: sha, body: await this.blobs.read(sha) };
  }

  /**
   * Whether a build may start, with everything it needs settled: the recipe exists and its content is
   * pinned, the image is not deleted and does not have the version yet, the names are valid.
   */
  async planBuild(req: BuildRequest): Promise<PlannedBuild> {
    const recipe = await this.get(req.recipe);
    const image = validateName(req.image, 'image name');
    const bad = (message: string) => new KilnError('KILN_BUILD_INVALID', message);
    if (req.arch !== undefined && req.arch !== recipe.arch) throw bad(`recipe ${recipe.name} builds for ${recipe.arch}, not ${req.arch}`);
    const version = req.version === undefined ? undefined : validateVersion(req.version);
    const promote = req.promote === undefined ? undefined : validateName(req.promote, 'channel name');
    const cmdline = req.cmdline === undefined ? undefined : validateCmdline(req.cmdline, 'KILN_BUILD_INVALID');
    if (req.initrd !== undefined && !(BUILD_INITRDS as readonly string[]).includes(req.initrd)) throw bad(`initrd: want ${BUILD_INITRDS.join(' or ')}`);
    const modules = req.initrdModules ?? [];
    if (modules.length > 64 || modules.some((m) => !MODULE.test(m))) throw bad('initrdModules: at most 64 kernel module names (letters, digits, _ and -)');
    const existing = await this.store.getImage(image);
    if (existing !== null && existing.deletedAt !== null) throw new KilnError('KILN_IMAGE_DELETED', `image ${image} is deleted; restore it first`);
    if (existing !== null && version !== undefined && (await this.store.getVersion(image, version)) !== null) throw new KilnError('KILN_VERSION_EXISTS', `image ${image} already has version ${version}`);
    const sha = req.recipeSha256 === undefined ? recipe.sha256 : validateSha256(req.recipeSha256);
    return {
      recipe: recipe.name, recipeSha256: sha, image, arch: recipe.arch,
      ...(version !== undefined ? { version } : {}), ...(promote !== undefined ? { promote } : {}), ...(cmdline !== undefined ? { cmdline } : {}),
      initrd: req.initrd ?? 'kiln-live', ...(modules.length > 0 ? { initrdModules: [...new Set(modules)] } : {}),
    };
  }

  private async upload(kind: RecipeKind, arch: Arch, body: Readable, mediaType: string | undefined): Promise<{ sha256: string; size: number; facts: RecipeFacts }> {
    const inspector = new RecipeInspector(kind, arch);
    // pipeline: a client that goes away mid-upload fails the inspector too, so the blob store keeps nothing.
    const checked = pipeline(body, inspector, () => undefined);
    const type = mediaType !== undefined && mediaType !== 'application/octet-stream' ? mediaType : kind === 'debootstrap' ? 'application/yaml' : 'application/octet-stream';
    const { artifact } = await this.artifacts.upload(checked, { mediaType: type });
    return { sha256: artifact.sha256, size: artifact.size, facts: inspector.facts };
  }

  private kindOf(kind: string): RecipeKind {
    if (!(RECIPE_KINDS as readonly string[]).includes(kind)) throw invalid(`recipe kind ${JSON.stringify(kind.slice(0, 40))}: want one of ${RECIPE_KINDS.join(', ')}`);
    return kind as RecipeKind;
  }

  private archOf(arch: string | undefined): Arch {
    if (arch === undefined) return 'x86_64';
    if (!(ARCHES as readonly string[]).includes(arch)) throw invalid(`arch ${JSON.stringify(arch.slice(0, 40))}: want ${ARCHES.join(' or ')}`);
    return arch as Arch;
  }

  private descriptionOf(d: string | undefined): string {
    const v = d ?? '';
    if (v.length > MAX_DESCRIPTION) throw invalid(`description: at most ${MAX_DESCRIPTION} characters`);
    return v;
  }
}
