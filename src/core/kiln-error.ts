// KilnError: the only error type the core raises on purpose; carries a catalogue code.
import { errorCatalogue, type ErrorCode, type ErrorKind } from './error-catalogue.js';

export class KilnError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, details?: Record<string, unknown>) {
    super(message ?? errorCatalogue[code].title);
    this.name = 'KilnError';
    this.code = code;
    this.details = details;
  }

  get kind(): ErrorKind {
    return errorCatalogue[this.code].kind;
  }
}

export function isKilnError(err: unknown): err is KilnError {
  return err instanceof KilnError;
}
