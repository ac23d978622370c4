// Kiln's version, from package.json (same relative path from src/ and dist/).
import { readFileSync } from 'node:fs';

export const KILN_VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
