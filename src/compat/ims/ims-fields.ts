// Reading IMS request bodies the way IMS's marshmallow schemas do: unknown fields are refused,
// booleans accept marshmallow's strings ("False", "yes", 1), and every problem is reported per field
// with marshmallow's messages, so clients that parse `errors` keep working.

export interface FieldErrors {
  [field: string]: string[] | FieldErrors;
}

/** A request body that did not validate: IMS answers 422 with `errors`. */
export class ImsValidationError extends Error {
  constructor(readonly errors: FieldErrors) {
    super('the request does not validate');
    this.name = 'ImsValidationError';
  }
}

export type Field =
  | { kind: 'string'; min?: number; max?: number; oneOf?: readonly string[]; nullable?: boolean }
  | { kind: 'bool' }
  | { kind: 'int'; min?: number }
  | { kind: 'uuid' }
  | { kind: 'link'; nullable?: boolean }
  | { kind: 'template' }
  | { kind: 'metadata' }
  | { kind: 'metadata-op' }
  | { kind: 'ssh-containers' };

export interface FieldSpec {
  field: Field;
  required?: boolean;
}

export type Schema = Record<string, FieldSpec>;

// marshmallow's Boolean truthy / falsy sets.
const TRUTHY = new Set(['t', 'true', 'on', 'y', 'yes', '1']);
const FALSY = new Set(['f', 'false', 'off', 'n', 'no', '0']);
const UUID = /^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/;
const MAX_STRING = 4096;

export interface ParsedLink {
  path: string;
  etag: string;
  type: string;
}

/** Checks `body` against `schema`; the known fields that were present, converted. Throws ImsValidationError. */
export function parseFields(body: unknown, schema: Schema): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ImsValidationError({ _schema: ['Invalid input type.'] });
  const errors: FieldErrors = {};
  const out: Record<string, unknown> = {};
  const input = body as Record<string, unknown>;
  for (const key of Object.keys(input)) if (!Object.hasOwn(schema, key)) errors[key] = ['Unknown field.'];
  for (const [name, spec] of Object.entries(schema)) {
    if (!Object.hasOwn(input, name)) {
      if (spec.required === true) errors[name] = ['Missing data for required field.'];
      continue;
    }
    const r = convert(input[name], spec.field);
    if ('error' in r) errors[name] = r.error;
    else out[name] = r.value;
  }
  if (Object.keys(errors).length > 0) throw new ImsValidationError(errors);
  return out;
}

type Converted = { value: unknown } | { error: string[] | FieldErrors };

function convert(v: unknown, f: Field): Converted {
  switch (f.kind) {
    case 'string': {
      if (v === null && f.nullable === true) return { value: null };
      if (typeof v !== 'string') return { error: ['Not a valid string.'] };
      // PostgreSQL cannot store NUL in text: refused on both dialects alike.
      if (v.includes('\u0000')) return { error: ['Not a valid string: it holds a NUL character.'] };
      if (f.min !== undefined && v.length < f.min) return { error: [`Shorter than minimum length ${f.min}.`] };
      const max = f.max ?? MAX_STRING;
      if (v.length > max) return { error: [`Longer than maximum length ${max}.`] };
      if (f.oneOf !== undefined && !f.oneOf.includes(v)) return { error: [`Must be one of: ${f.oneOf.join(', ')}.`] };
      return { value: v };
    }
    case 'bool':
      return toBool(v);
    case 'int': {
      const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d{1,15}$/.test(v.trim()) ? Number(v.trim()) : NaN;
      if (!Number.isSafeInteger(n)) return { error: ['Not a valid integer.'] };
      if (f.min !== undefined && n < f.min) return { error: [`Must be greater than or equal to ${f.min}.`] };
      return { value: n };
    }
    case 'uuid':
      if (typeof v !== 'string' || !UUID.test(v)) return { error: ['Not a valid UUID.'] };
      return { value: canonicalUuid(v) };
    case 'link':
      if (v === null && f.nullable === true) return { value: null };
      return toLink(v);
    case 'template':
      return toTemplate(v);
    case 'metadata':
      return toMetadata(v);
    case 'metadata-op':
      return toMetadataOp(v);
    case 'ssh-containers':
      return toSshContainers(v);
  }
}

function toBool(v: unknown): Converted {
  if (typeof v === 'boolean') return { value: v };
  if (v === 1 || v === 0) return { value: v === 1 };
  if (typeof v === 'string') {
    const s = v.toLowerCase();
    if (TRUTHY.has(s)) return { value: true };
    if (FALSY.has(s)) return { value: false };
  }
  return { error: ['Not a valid boolean.'] };
}

export function canonicalUuid(v: string): string {
  const hex = v.replace(/-/g, '').toLowerCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function isUuid(v: string): boolean {
  return UUID.test(v);
}

function nested(v: unknown, schema: Schema): { value: Record<string, unknown> } | { error: FieldErrors } {
  try {
    return { value: parseFields(v, schema) };
  } catch (err) {
    if (err instanceof ImsValidationError) return { error: err.errors };
    throw err;
  }
}

const LINK: Schema = {
  path: { field: { kind: 'string', min: 1 }, required: true },
  etag: { field: { kind: 'string' } },
  type: { field: { kind: 'string', oneOf: ['s3'] }, required: true },
};

function toLink(v: unknown): Converted {
  const r = nested(v, LINK);
  if ('error' in r) return r;
  const l = r.value as { path: string; etag?: string; type: string };
  return { value: { path: l.path, etag: l.etag ?? '', type: l.type } satisfies ParsedLink };
}

const TEMPLATE_ENTRY: Schema = {
  key: { field: { kind: 'string', min: 1, max: 256 }, required: true },
  value: { field: { kind: 'string', max: 4096 }, required: true },
};

function toTemplate(v: unknown): Converted {
  if (!Array.isArray(v)) return { error: ['Not a valid list.'] };
  if (v.length > 256) return { error: ['At most 256 entries.'] };
  const errors: FieldErrors = {};
  const out: unknown[] = [];
  v.forEach((item, i) => {
    const r = nested(item, TEMPLATE_ENTRY);
    if ('error' in r) errors[String(i)] = r.error;
    else out.push(r.value);
  });
  return Object.keys(errors).length > 0 ? { error: errors } : { value: out };
}

const MAX_METADATA = 256;

/** IMS's POST metadata: a map of strings, or one `{key, value}` pair standing for `{key: value}`. */
function toMetadata(v: unknown): Converted {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { error: ['Not a valid mapping type.'] };
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 2 && typeof o.key === 'string' && typeof o.value === 'string') return { value: { [o.key]: o.value } };
  if (keys.length > MAX_METADATA) return { error: [`At most ${MAX_METADATA} keys.`] };
  const errors: FieldErrors = {};
  for (const k of keys) {
    const value = o[k];
    if (typeof value !== 'string' || value.length > MAX_STRING || k.length > 256) errors[k] = { value: ['Not a valid string.'] };
  }
  return Object.keys(errors).length > 0 ? { error: errors } : { value: { ...o } };
}

const METADATA_OP: Schema = {
  operation: { field: { kind: 'string', oneOf: ['set', 'remove'] }, required: true },
  key: { field: { kind: 'string', min: 1, max: 256 }, required: true },
  value: { field: { kind: 'string' } },
};

function toMetadataOp(v: unknown): Converted {
  const r = nested(v, METADATA_OP);
  if ('error' in r) return r;
  if (r.value.operation === 'set' && r.value.value === undefined) return { error: { value: ['Missing data for required field.'] } };
  return r;
}

const SSH_CONTAINER: Schema = {
  name: { field: { kind: 'string', min: 1, max: 40 }, required: true },
  jail: { field: { kind: 'bool' } },
};

function toSshContainers(v: unknown): Converted {
  if (!Array.isArray(v)) return { error: ['Not a valid list.'] };
  const errors: FieldErrors = {};
  const out: { name: string; jail: boolean }[] = [];
  v.slice(0, 16).forEach((item, i) => {
    const r = nested(item, SSH_CONTAINER);
    if ('error' in r) errors[String(i)] = r.error;
    else out.push({ name: r.value.name as string, jail: (r.value.jail as boolean | undefined) ?? false });
  });
  if (v.length > 16) errors._schema = ['At most 16 entries.'];
  return Object.keys(errors).length > 0 ? { error: errors } : { value: out };
}
