// loginFailed: turns whatever a login step threw into KILN_LOGIN_FAILED with a readable reason (describeFailure).
import * as oidc from 'openid-client';
import { KilnError, isKilnError } from '../../core/kiln-error.js';

export function loginFailed(err: unknown): KilnError {
  if (isKilnError(err)) return err;
  return new KilnError('KILN_LOGIN_FAILED', describeFailure(err));
}

/**
 * openid-client throws generic messages ("invalid response encountered") with the specific one in
 * `cause`; an OAuth error from the provider is the most useful reason, so it wins when present.
 */
export function describeFailure(err: unknown): string {
  const chain: unknown[] = [];
  for (let e = err; e !== null && e !== undefined && chain.length < 5; e = (e as { cause?: unknown }).cause) chain.push(e);
  for (const e of chain) {
    if (e instanceof oidc.AuthorizationResponseError || e instanceof oidc.ResponseBodyError) {
      return describeOAuthError(e.error, e.error_description);
    }
    // GitHub answers a bad code with 200 and an error body, which the library reports as a response
    // without access_token, keeping the body.
    const body = (e as { body?: { error?: unknown; error_description?: unknown } }).body;
    if (typeof body === 'object' && body !== null && typeof body.error === 'string') {
      return describeOAuthError(body.error, typeof body.error_description === 'string' ? body.error_description : undefined);
    }
  }
  const messages = [...new Set(chain.filter((e): e is Error => e instanceof Error).map((e) => e.message))];
  return messages.length > 0 ? messages.join(': ') : String(err);
}

function describeOAuthError(error: string, description: string | undefined): string {
  return `the provider answered ${error}${description === undefined ? '' : `: ${description}`}`;
}
