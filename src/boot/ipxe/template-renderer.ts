// User-supplied boot templates (LiquidJS): sandboxed (no file access, bounded parse/render cost),
// checked when a profile is saved, parsed once and cached.
import { Liquid, type Template } from 'liquidjs';
import { KilnError } from '../../core/kiln-error.js';
import type { ScriptModel } from './render-ipxe-script.js';

const MAX_TEMPLATE = 64 * 1024;
const MAX_CACHE = 1000;

export class TemplateRenderer {
  private readonly liquid = new Liquid({
    // Model values are escaped before they reach the template; this guard only ensures no output
    // can ever carry a line break (a new iPXE command) whatever filters a template applies.
    // eslint-disable-next-line no-control-regex
    outputEscape: (v: unknown) => String(v).replace(/[\u0000-\u001f\u007f]/g, ''),
    ownPropertyOnly: true,
    relativeReference: false,
    strictFilters: true,
    parseLimit: MAX_TEMPLATE * 4,
    renderLimit: 1000,
    memoryLimit: 16 * 1024 * 1024,
    fs: {
      // No includes: a template is one self-contained text.
      exists: () => Promise.resolve(false),
      existsSync: () => false,
      readFile: () => Promise.reject(new Error('includes are disabled')),
      readFileSync: () => { throw new Error('includes are disabled'); },
      resolve: (_root: string, file: string) => file,
    },
  });
  private readonly cache = new Map<string, Template[]>();

  /** Throws KILN_PROFILE_INVALID for a template that would not produce an iPXE script. */
  check(template: string): void {
    if (template.length > MAX_TEMPLATE) throw new KilnError('KILN_PROFILE_INVALID', `a template is at most ${MAX_TEMPLATE} bytes`);
    if (!template.startsWith('#!ipxe')) throw new KilnError('KILN_PROFILE_INVALID', 'a boot template must start with #!ipxe');
    this.parse(template);
  }

  private parse(template: string): Template[] {
    const hit = this.cache.get(template);
    if (hit !== undefined) return hit;
    let parsed: Template[];
    try {
      parsed = this.liquid.parse(template);
    } catch (err) {
      throw new KilnError('KILN_PROFILE_INVALID', `template does not parse: ${(err as Error).message.split('\n')[0] ?? ''}`);
    }
    if (this.cache.size >= MAX_CACHE) this.cache.clear();
    this.cache.set(template, parsed);
    return parsed;
  }

  async render(template: string, model: ScriptModel): Promise<string> {
    return (await this.liquid.render(this.parse(template), model)) as string;
  }
}
