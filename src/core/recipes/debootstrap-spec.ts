// The debootstrap recipe: a small YAML or JSON document (suite, mirror, variant, components, packages,
// post-install script), checked completely before anything is stored; every problem is reported at once.
import { parse as parseYaml } from 'yaml';
import { KilnError } from '../kiln-error.js';
import type { Arch } from '../types.js';

export interface DebootstrapSpec {
  suite: string;
  mirror: string;
  /** debootstrap's --variant; `default` passes none. */
  variant: 'minbase' | 'buildd' | 'default';
  components: string[];
  packages: string[];
  exclude: string[];
  /** Added to the packages so the image has a kernel in /boot; null when `packages` brings its own. */
  kernelPackage: string | null;
  /** Shell script run as root in the new root (chroot, /proc mounted, services kept from starting). */
  postInstall: string;
}

/** Largest spec accepted (it is a few lines of YAML; the post-install script makes it grow). */
export const MAX_SPEC_BYTES = 1024 * 1024;
const MAX_SCRIPT = 256 * 1024;
const SUITE = /^[a-z][a-z0-9.-]{0,31}$/;
const COMPONENT = /^[a-z0-9][a-z0-9_.+-]{0,63}$/;
// Debian policy package names; no version or architecture qualifiers (debootstrap --include takes none).
const PACKAGE = /^[a-z0-9][a-z0-9+.-]{1,99}$/;
const KEYS = ['suite', 'mirror', 'variant', 'components', 'packages', 'exclude', 'kernelPackage', 'postInstall'] as const;

export const DEFAULT_MIRROR = 'http://deb.debian.org/debian';

export function defaultKernelPackage(arch: Arch): string {
  return arch === 'aarch64' ? 'linux-image-arm64' : 'linux-image-amd64';
}

function invalid(problems: string[]): KilnError {
  return new KilnError('KILN_RECIPE_INVALID', `debootstrap recipe: ${problems.join('; ')}`, { problems });
}

/** Parses and checks a spec; throws KILN_RECIPE_INVALID listing every problem. */
export function parseDebootstrapSpec(text: string, arch: Arch): DebootstrapSpec {
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 0 });
  } catch (err) {
    throw invalid([`not YAML or JSON: ${(err as Error).message.split('\n')[0]}`]);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalid(['want a mapping with at least `suite`']);
  const o = doc as Record<string, unknown>;
  const problems: string[] = [];
  for (const k of Object.keys(o)) if (!(KEYS as readonly string[]).includes(k)) problems.push(`unknown key ${JSON.stringify(k.slice(0, 40))} (known: ${KEYS.join(', ')})`);

  const suite = o.suite;
  if (typeof suite !== 'string' || !SUITE.test(suite)) problems.push('suite: want a Debian suite or codename such as bookworm');

  const mirror = o.mirror ?? DEFAULT_MIRROR;
  if (typeof mirror !== 'string' || !validMirror(mirror)) problems.push('mirror: want an http(s) URL without spaces or quotes');

  const variant = o.variant ?? 'minbase';
  if (variant !== 'minbase' && variant !== 'buildd' && variant !== 'default') problems.push('variant: want minbase, buildd or default');

  const list = (key: string, fallback: string[], re: RegExp, what: string): string[] => {
    const v = o[key] ?? fallback;
    if (!Array.isArray(v) || v.length > 1000) {
      problems.push(`${key}: want a list of ${what}`);
      return [];
    }
    const bad = v.filter((x) => typeof x !== 'string' || !re.test(x));
    if (bad.length > 0) problems.push(`${key}: ${bad.slice(0, 5).map((b) => JSON.stringify(String(b).slice(0, 40))).join(', ')} ${bad.length === 1 ? 'is not a' : 'are not'} ${what}`);
    return [...new Set(v as string[])];
  };
  const components = list('components', ['main'], COMPONENT, 'archive component(s)');
  if (components.length === 0 && Array.isArray(o.components)) problems.push('components: want at least one');
  const packages = list('packages', [], PACKAGE, 'Debian package name(s)');
  const exclude = list('exclude', [], PACKAGE, 'Debian package name(s)');

  let kernelPackage: string | null = defaultKernelPackage(arch);
  if (o.kernelPackage === null) kernelPackage = null;
  else if (o.kernelPackage !== undefined) {
    if (typeof o.kernelPackage !== 'string' || !PACKAGE.test(o.kernelPackage)) problems.push('kernelPackage: want a Debian package name, or null when packages brings the kernel');
    else kernelPackage = o.kernelPackage;
  }

  const postInstall = o.postInstall ?? '';
  if (typeof postInstall !== 'string') problems.push('postInstall: want a shell script (a string)');
  else if (Buffer.byteLength(postInstall) > MAX_SCRIPT) problems.push(`postInstall: longer than ${MAX_SCRIPT / 1024} KiB`);
  else if (postInstall.includes('\0')) problems.push('postInstall: contains a NUL byte');

  if (problems.length > 0) throw invalid(problems);
  return {
    suite: suite as string,
    mirror: mirror as string,
    variant: variant as DebootstrapSpec['variant'],
    components,
    packages,
    exclude,
    kernelPackage,
    postInstall: postInstall as string,
  };
}

function validMirror(text: string): boolean {
  if (text.length > 2048 || /[\s'"`\\]/.test(text)) return false;
  try {
    const u = new URL(text);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  } catch {
    return false;
  }
}
