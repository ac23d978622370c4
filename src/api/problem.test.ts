import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { errorCatalogue } from '../core/error-catalogue.js';
import { KilnError } from '../core/kiln-error.js';
import { STATUS_OF, toProblem } from './problem.js';

describe('problem mapping', () => {
  it('docs/errors.md lists exactly the catalogue, with the same statuses and titles', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    const rows = [...doc.matchAll(/^\| `(KILN_[A-Z_]+)` \| (\d{3}) \| (.+) \|$/gm)].map((m) => [m[1], Number(m[2]), m[3]]);
    const expected = Object.entries(errorCatalogue).map(([code, spec]) => [code, STATUS_OF[spec.kind], spec.title]);
    expect(rows).toEqual(expected);
  });

  it('maps a KilnError to its status, code and detail', () => {
    const p = toProblem(new KilnError('KILN_MACHINE_NOT_FOUND', 'no machine x'), '/api/v1/machines/x');
    expect(p).toMatchObject({ status: 404, code: 'KILN_MACHINE_NOT_FOUND', detail: 'no machine x', instance: '/api/v1/machines/x' });
  });

  it('maps Fastify validation, body and media type errors to request codes', () => {
    expect(toProblem(Object.assign(new Error('body/name must be string'), { code: 'FST_ERR_VALIDATION', statusCode: 400 })).code).toBe('KILN_REQUEST_INVALID');
    expect(toProblem(Object.assign(new Error('too large'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 })).status).toBe(413);
    expect(toProblem(Object.assign(new Error('bad type'), { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415 })).code).toBe('KILN_REQUEST_UNSUPPORTED_MEDIA_TYPE');
    expect(toProblem(Object.assign(new SyntaxError('Unexpected token'), { statusCode: 400 })).code).toBe('KILN_REQUEST_MALFORMED_JSON');
  });

  it('never leaks an unexpected error message', () => {
    const p = toProblem(new Error('secret database path /var/x'));
    expect(p).toMatchObject({ status: 500, code: 'KILN_INTERNAL' });
    expect(JSON.stringify(p)).not.toContain('/var/x');
  });

  it('gives every kind an HTTP status', () => {
    for (const spec of Object.values(errorCatalogue)) expect(STATUS_OF[spec.kind]).toBeGreaterThanOrEqual(400);
  });
});
