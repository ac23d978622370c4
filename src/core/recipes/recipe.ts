// Recipes: build instructions stored as an artifact plus this record; and what a build is asked to do.
import type { Arch } from '../types.js';

export const RECIPE_KINDS = ['debootstrap', 'rootfs-archive', 'oci-archive', 'kiwi-ng'] as const;
export type RecipeKind = (typeof RECIPE_KINDS)[number];

export interface Recipe {
  /** Stable id (UUID) for clients that address recipes by id (Cray IMS); `name` is Kiln's key. */
  id: string;
  name: string;
  kind: RecipeKind;
  /** The architecture the recipe builds for. */
  arch: Arch;
  description: string;
  /** The recipe file (a spec or an archive) as an artifact. */
  sha256: string;
  size: number;
  createdAt: string;
  updatedAt: string;
  revision: number;
}

/** Which initrd boots the built version. */
export const BUILD_INITRDS = ['kiln-live', 'image'] as const;
export type BuildInitrd = (typeof BUILD_INITRDS)[number];

/** A build as the `image-build` job takes it (validated by RecipeService.planBuild). */
export interface BuildRequest {
  recipe: string;
  /** The recipe content the build uses: pinned when the build is asked for, so a later replace does not change it. */
  recipeSha256?: string | undefined;
  image: string;
  version?: string | undefined;
  arch?: Arch | undefined;
  /** A channel of the image moved to the new version when the build succeeds. */
  promote?: string | undefined;
  cmdline?: string | undefined;
  /**
   * `kiln-live` (default): a generated initrd that fetches the squashfs named by `kiln.rootfs=` and
   * boots it under a tmpfs overlay. `image`: the image's own /boot/initrd.img (dracut live images).
   */
  initrd?: BuildInitrd | undefined;
  /** Kernel modules added to the kiln-live initrd (with their dependencies), besides its NIC and filesystem defaults. */
  initrdModules?: string[] | undefined;
}
