// Makes any value safe inside an iPXE script line: it can neither start a new command nor expand a setting.

/**
 * Keeps a conservative set of characters and percent-encodes every other byte (UTF-8). What stays can
 * form no whitespace (so no new token, no `||`/`&&` of its own), no newline (no new command) and no
 * `${` (no setting expansion). `%` itself is encoded, so the result decodes back unambiguously.
 */
export function escapeIpxe(value: string): string {
  // Almost every value (MACs, names, versions) is already safe; skip the byte loop for those.
  if (SAFE_ALL.test(value)) return value;
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += SAFE.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const SAFE = /^[A-Za-z0-9._~:/=,+@-]$/;
const SAFE_ALL = /^[A-Za-z0-9._~:/=,+@-]*$/;

/** True when `value` can be written into a script as is: what escapeIpxe leaves unchanged. */
export function isIpxeSafe(value: string): boolean {
  return SAFE_ALL.test(value);
}

/**
 * For console text (`echo`): keeps spaces and common punctuation readable, replaces anything that
 * could expand (`$`), chain (`&&`, `||`) or break the line with `_`.
 */
export function escapeIpxeText(value: string): string {
  return value.replace(/[^A-Za-z0-9 .,:;()/_=+@'-]/g, '_');
}
