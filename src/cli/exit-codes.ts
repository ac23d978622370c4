// The CLI's exit codes: the one mapping from error kinds to process status. Documented in the README.
import { errorCatalogue, type ErrorKind } from '../core/error-catalogue.js';

export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  notFound: 3,
  conflict: 4,
  auth: 5,
  invalid: 6,
  unavailable: 7,
  config: 8,
} as const;

const BY_KIND: Record<ErrorKind, number> = {
  invalid: EXIT.invalid,
  unprocessable: EXIT.invalid,
  too_large: EXIT.invalid,
  unsupported_media_type: EXIT.invalid,
  range_not_satisfiable: EXIT.invalid,
  unauthenticated: EXIT.auth,
  forbidden: EXIT.auth,
  not_found: EXIT.notFound,
  conflict: EXIT.conflict,
  precondition_failed: EXIT.conflict,
  unavailable: EXIT.unavailable,
  internal: EXIT.failure,
};

export function exitCodeForErrorCode(code: string): number {
  const spec = (errorCatalogue as Record<string, { kind: ErrorKind } | undefined>)[code];
  return spec === undefined ? EXIT.failure : BY_KIND[spec.kind];
}
