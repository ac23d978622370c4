// Module hooks for register-ts.mjs: `./x.js` imports find `./x.ts`, and .ts files are transpiled
// (types dropped, nothing checked) with the project's own TypeScript compiler. Output is cached in
// the temp directory by path, size and mtime: a test starting several processes pays once.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CACHE = join(tmpdir(), 'kiln-ts-hooks-cache');
let ts;

export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (err) {
    const relative = specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('file:');
    if (relative && specifier.endsWith('.js') && err?.code === 'ERR_MODULE_NOT_FOUND') return next(`${specifier.slice(0, -3)}.ts`, context);
    throw err;
  }
}

export async function load(url, context, next) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return next(url, context);
  const fileName = fileURLToPath(url);
  const s = await stat(fileName);
  const cached = join(CACHE, `${createHash('sha256').update(`${fileName}\0${s.size}\0${s.mtimeMs}`).digest('hex')}.js`);
  let source = await readFile(cached, 'utf8').catch(() => null);
  if (source === null) {
    ts ??= (await import('typescript')).default;
    source = ts.transpileModule(await readFile(fileName, 'utf8'), {
      fileName,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true, inlineSourceMap: true },
    }).outputText;
    await mkdir(CACHE, { recursive: true });
    const tmp = `${cached}.${process.pid}.tmp`;
    await writeFile(tmp, source);
    await rename(tmp, cached);
  }
  return { format: 'module', source, shortCircuit: true };
}
