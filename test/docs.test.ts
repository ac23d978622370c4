// The README is for users: keep its configuration table and commands true to the code.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../src/server/config.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it('documents every setting with its variable, flag and default', () => {
    for (const s of SETTINGS) {
      const row = readme.split('\n').find((l) => l.startsWith(`| \`${s.key}\` |`));
      expect(row, s.key).toBeDefined();
      expect(row).toContain(`\`${s.env}\``);
      expect(row).toContain(`\`${s.flag}\``);
      expect(row).toContain(s.default === null ? '(unset)' : `\`${String(s.default)}\``);
    }
  });

  it('shows the test command CI runs', () => {
    const ci = readFileSync(new URL('../.ci/run', import.meta.url), 'utf8').trim().split('\n').pop()!;
    expect(readme).toContain(ci);
  });
});
