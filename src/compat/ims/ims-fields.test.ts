import { describe, expect, it } from 'vitest';
import { canonicalUuid, ImsValidationError, isUuid, parseFields, type FieldErrors, type Schema } from './ims-fields.js';
import * as S from './ims-schemas.js';

/** The `errors` of the ImsValidationError parseFields throws (fails the test when it does not throw). */
function errorsOf(body: unknown, schema: Schema): FieldErrors {
  try {
    parseFields(body, schema);
  } catch (err) {
    expect(err).toBeInstanceOf(ImsValidationError);
    return (err as ImsValidationError).errors;
  }
  throw new Error(`expected ${JSON.stringify(body)} to be refused`);
}

const RECIPE_ID = '9a8b7c6d-1234-4abc-8def-0123456789ab';
const KEY_ID = '0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0';
const job = (more: Record<string, unknown> = {}) => ({ job_type: 'create', artifact_id: RECIPE_ID, public_key_id: KEY_ID, image_root_archive_name: 'Test', ...more });

describe('parseFields: what marshmallow refuses', () => {
  it('refuses unknown fields with "Unknown field." (the README\'s PATCH {"platform": …})', () => {
    expect(errorsOf({ platform: 'aarch64' }, S.ImagePatch)).toEqual({ platform: ['Unknown field.'] });
    // Known fields that are fine do not hide an unknown one, and every unknown one is named.
    expect(errorsOf({ arch: 'aarch64', platform: 'x', colour: 1 }, S.ImagePatch)).toEqual({ platform: ['Unknown field.'], colour: ['Unknown field.'] });
  });

  it('names every missing required field at once', () => {
    expect(errorsOf({}, S.RecipeCreate)).toEqual({
      name: ['Missing data for required field.'],
      recipe_type: ['Missing data for required field.'],
      linux_distribution: ['Missing data for required field.'],
    });
    expect(errorsOf({ name: 'k' }, S.PublicKeyCreate)).toEqual({ public_key: ['Missing data for required field.'] });
  });

  it('refuses bodies that are not objects', () => {
    for (const body of [null, [], 'text', 3]) expect(errorsOf(body, S.PublicKeyCreate), JSON.stringify(body)).toEqual({ _schema: ['Invalid input type.'] });
  });

  it('checks strings: type, minimum and maximum length, enums', () => {
    expect(errorsOf({ name: '', public_key: 'x' }, S.PublicKeyCreate)).toEqual({ name: ['Shorter than minimum length 1.'] });
    expect(errorsOf({ name: 7, public_key: 'x' }, S.PublicKeyCreate)).toEqual({ name: ['Not a valid string.'] });
    expect(errorsOf({ name: 'n', public_key: 'x'.repeat(16385) }, S.PublicKeyCreate)).toEqual({ public_key: ['Longer than maximum length 16384.'] });
    expect(errorsOf({ name: 'n'.repeat(4097), public_key: 'x' }, S.PublicKeyCreate)).toEqual({ name: ['Longer than maximum length 4096.'] });
    expect(errorsOf({ name: 'a\u0000b', public_key: 'x' }, S.PublicKeyCreate)).toEqual({ name: ['Not a valid string: it holds a NUL character.'] });
    expect(errorsOf({ arch: 'sparc' }, S.ImagePatch)).toEqual({ arch: ['Must be one of: x86_64, aarch64.'] });
    expect(parseFields({ arch: 'aarch64' }, S.ImagePatch)).toEqual({ arch: 'aarch64' });
  });

  it('returns only the fields that were sent (no defaults invented)', () => {
    expect(parseFields({ name: 'n', public_key: 'k' }, S.PublicKeyCreate)).toEqual({ name: 'n', public_key: 'k' });
    expect(parseFields({}, S.ImagePatch)).toEqual({});
  });

  it('accepts a null link where the schema allows it (create) and not where it does not (patch)', () => {
    expect(parseFields({ name: 'i', link: null }, S.ImageCreate)).toEqual({ name: 'i', link: null });
    expect(errorsOf({ link: null }, S.ImagePatch)).toEqual({ link: { _schema: ['Invalid input type.'] } });
  });
});

describe('parseFields: marshmallow booleans', () => {
  it('takes true/false, 1/0 and marshmallow\'s strings in any case: "False" (the README), "yes", "on", "t"…', () => {
    const cases: [unknown, boolean][] = [
      [true, true], [false, false], [1, true], [0, false],
      ['False', false], ['false', false], ['FALSE', false], ['f', false], ['no', false], ['N', false], ['off', false], ['0', false],
      ['True', true], ['yes', true], ['YES', true], ['y', true], ['on', true], ['t', true], ['1', true],
    ];
    for (const [v, want] of cases) expect(parseFields(job({ require_dkms: v }), S.JobCreate).require_dkms, JSON.stringify(v)).toBe(want);
  });

  it('refuses anything else', () => {
    for (const v of [2, -1, 0.5, 'maybe', '', 'truee', null, [], {}]) {
      expect(errorsOf(job({ require_dkms: v }), S.JobCreate), JSON.stringify(v)).toEqual({ require_dkms: ['Not a valid boolean.'] });
    }
  });
});

describe('parseFields: integers', () => {
  it('takes numbers and decimal strings (surrounding blanks ignored)', () => {
    expect(parseFields(job({ build_env_size: 30 }), S.JobCreate).build_env_size).toBe(30);
    expect(parseFields(job({ build_env_size: '25' }), S.JobCreate).build_env_size).toBe(25);
    expect(parseFields(job({ job_mem_size: ' 12 ' }), S.JobCreate).job_mem_size).toBe(12);
  });

  it('refuses fractions, non-numeric strings, booleans, huge numbers and values under the minimum', () => {
    for (const v of [1.5, 'ten', '1e3', '0x10', true, null, '', Number.MAX_SAFE_INTEGER + 2, '1234567890123456']) {
      expect(errorsOf(job({ build_env_size: v }), S.JobCreate), JSON.stringify(v)).toEqual({ build_env_size: ['Not a valid integer.'] });
    }
    expect(errorsOf(job({ build_env_size: 0 }), S.JobCreate)).toEqual({ build_env_size: ['Must be greater than or equal to 1.'] });
    expect(errorsOf(job({ job_mem_size: '-3' }), S.JobCreate)).toEqual({ job_mem_size: ['Must be greater than or equal to 1.'] });
  });
});

describe('parseFields: UUIDs', () => {
  it('canonicalises upper case and dash-less forms', () => {
    const upper = RECIPE_ID.toUpperCase();
    const bare = RECIPE_ID.replace(/-/g, '');
    expect(parseFields(job({ artifact_id: upper }), S.JobCreate).artifact_id).toBe(RECIPE_ID);
    expect(parseFields(job({ artifact_id: bare }), S.JobCreate).artifact_id).toBe(RECIPE_ID);
    expect(canonicalUuid(bare.toUpperCase())).toBe(RECIPE_ID);
    expect(isUuid(bare)).toBe(true);
  });

  it('refuses what is not one', () => {
    for (const v of ['RECIPE_ID', `${RECIPE_ID}0`, RECIPE_ID.slice(1), RECIPE_ID.replace('a', 'g'), `{${RECIPE_ID}}`, 42, null]) {
      expect(errorsOf(job({ artifact_id: v }), S.JobCreate), JSON.stringify(v)).toEqual({ artifact_id: ['Not a valid UUID.'] });
    }
    expect(isUuid('RECIPE_ID')).toBe(false);
  });

  it('reports every problem of a job body at once (the README job with placeholders)', () => {
    expect(errorsOf({ job_type: 'create', require_dkms: 'False', image_root_archive_name: 'Test', artifact_id: 'RECIPE_ID', public_key_id: 'PUBLIC_KEY_ID' }, S.JobCreate)).toEqual({
      artifact_id: ['Not a valid UUID.'],
      public_key_id: ['Not a valid UUID.'],
    });
    expect(errorsOf(job({ job_type: 'build' }), S.JobCreate)).toEqual({ job_type: ['Must be one of: create, customize.'] });
  });
});

describe('parseFields: links', () => {
  it('defaults the etag to "" and allows only type s3', () => {
    expect(parseFields({ link: { path: 's3://ims/a.tgz', type: 's3' } }, S.RecipePatch)).toEqual({ link: { path: 's3://ims/a.tgz', etag: '', type: 's3' } });
    expect(parseFields({ link: { path: 's3://ims/a.tgz', etag: 'abc', type: 's3' } }, S.RecipePatch).link).toEqual({ path: 's3://ims/a.tgz', etag: 'abc', type: 's3' });
    expect(errorsOf({ link: { path: 's3://ims/a.tgz', type: 'http' } }, S.RecipePatch)).toEqual({ link: { type: ['Must be one of: s3.'] } });
  });

  it('reports nested problems under the link field', () => {
    expect(errorsOf({ link: { type: 's3', extra: 1 } }, S.RecipePatch)).toEqual({ link: { path: ['Missing data for required field.'], extra: ['Unknown field.'] } });
    expect(errorsOf({ link: 's3://ims/a.tgz' }, S.RecipePatch)).toEqual({ link: { _schema: ['Invalid input type.'] } });
  });
});

describe('parseFields: template dictionaries', () => {
  it('takes a list of {key, value}', () => {
    expect(parseFields({ template_dictionary: [{ key: 'CSM_RELEASE', value: '1.6' }] }, S.RecipePatch)).toEqual({ template_dictionary: [{ key: 'CSM_RELEASE', value: '1.6' }] });
  });

  it('reports problems by index; refuses non-lists and more than 256 entries', () => {
    expect(errorsOf({ template_dictionary: [{ key: 'a', value: 'b' }, { key: '' }] }, S.RecipePatch)).toEqual({
      template_dictionary: { 1: { key: ['Shorter than minimum length 1.'], value: ['Missing data for required field.'] } },
    });
    expect(errorsOf({ template_dictionary: { key: 'a', value: 'b' } }, S.RecipePatch)).toEqual({ template_dictionary: ['Not a valid list.'] });
    const many = Array.from({ length: 257 }, (_, i) => ({ key: `k${i}`, value: 'v' }));
    expect(errorsOf({ template_dictionary: many }, S.RecipePatch)).toEqual({ template_dictionary: ['At most 256 entries.'] });
    expect(parseFields({ template_dictionary: many.slice(0, 256) }, S.RecipePatch).template_dictionary).toHaveLength(256);
  });
});

describe('parseFields: image metadata (POST)', () => {
  it('takes a map of strings', () => {
    expect(parseFields({ name: 'i', metadata: { a: '1', b: '2' } }, S.ImageCreate).metadata).toEqual({ a: '1', b: '2' });
    expect(parseFields({ name: 'i', metadata: {} }, S.ImageCreate).metadata).toEqual({});
  });

  it('takes one {key, value} pair as the map {key: value}, as IMS converts it', () => {
    expect(parseFields({ name: 'i', metadata: { key: 'owner', value: 'alice' } }, S.ImageCreate).metadata).toEqual({ owner: 'alice' });
    // Three keys: a plain map that happens to use the words key and value.
    expect(parseFields({ name: 'i', metadata: { key: 'owner', value: 'alice', x: 'y' } }, S.ImageCreate).metadata).toEqual({ key: 'owner', value: 'alice', x: 'y' });
  });

  it('refuses non-maps, non-string values and more than 256 keys', () => {
    for (const v of [[], 'a=b', null]) expect(errorsOf({ name: 'i', metadata: v }, S.ImageCreate), JSON.stringify(v)).toEqual({ metadata: ['Not a valid mapping type.'] });
    expect(errorsOf({ name: 'i', metadata: { a: 1, b: 'ok', c: null } }, S.ImageCreate)).toEqual({ metadata: { a: { value: ['Not a valid string.'] }, c: { value: ['Not a valid string.'] } } });
    const many = Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`k${i}`, 'v']));
    expect(errorsOf({ name: 'i', metadata: many }, S.ImageCreate)).toEqual({ metadata: ['At most 256 keys.'] });
  });
});

describe('parseFields: image metadata operations (PATCH)', () => {
  it('takes set with a value and remove without one', () => {
    expect(parseFields({ metadata: { operation: 'set', key: 'k', value: 'v' } }, S.ImagePatch).metadata).toEqual({ operation: 'set', key: 'k', value: 'v' });
    expect(parseFields({ metadata: { operation: 'remove', key: 'k' } }, S.ImagePatch).metadata).toEqual({ operation: 'remove', key: 'k' });
  });

  it('refuses set without a value, unknown operations, missing keys and the POST map form', () => {
    expect(errorsOf({ metadata: { operation: 'set', key: 'k' } }, S.ImagePatch)).toEqual({ metadata: { value: ['Missing data for required field.'] } });
    expect(errorsOf({ metadata: { operation: 'replace', key: 'k', value: 'v' } }, S.ImagePatch)).toEqual({ metadata: { operation: ['Must be one of: set, remove.'] } });
    expect(errorsOf({ metadata: { operation: 'remove' } }, S.ImagePatch)).toEqual({ metadata: { key: ['Missing data for required field.'] } });
    expect(errorsOf({ metadata: { k: 'v' } }, S.ImagePatch)).toEqual({
      metadata: { k: ['Unknown field.'], operation: ['Missing data for required field.'], key: ['Missing data for required field.'] },
    });
  });
});

describe('parseFields: ssh containers', () => {
  it('defaults jail to false and reads jail as a marshmallow boolean', () => {
    expect(parseFields(job({ ssh_containers: [{ name: 'customize' }, { name: 'jailed', jail: 'yes' }] }), S.JobCreate).ssh_containers).toEqual([
      { name: 'customize', jail: false },
      { name: 'jailed', jail: true },
    ]);
  });

  it('checks names (1 to 40 characters), refuses non-lists and more than 16 containers', () => {
    expect(errorsOf(job({ ssh_containers: [{ name: 'x'.repeat(41) }, { name: 'ok', jail: 'sometimes' }, {}] }), S.JobCreate)).toEqual({
      ssh_containers: {
        0: { name: ['Longer than maximum length 40.'] },
        1: { jail: ['Not a valid boolean.'] },
        2: { name: ['Missing data for required field.'] },
      },
    });
    expect(parseFields(job({ ssh_containers: [{ name: 'x'.repeat(40) }] }), S.JobCreate).ssh_containers).toEqual([{ name: 'x'.repeat(40), jail: false }]);
    expect(errorsOf(job({ ssh_containers: { name: 'a' } }), S.JobCreate)).toEqual({ ssh_containers: ['Not a valid list.'] });
    const many = Array.from({ length: 17 }, (_, i) => ({ name: `c${i}` }));
    expect(errorsOf(job({ ssh_containers: many }), S.JobCreate)).toEqual({ ssh_containers: { _schema: ['At most 16 entries.'] } });
    expect(parseFields(job({ ssh_containers: many.slice(0, 16) }), S.JobCreate).ssh_containers).toHaveLength(16);
  });
});
