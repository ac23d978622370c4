// `node --import ./register-ts.mjs src/cli/kiln.ts ...`: runs Kiln's TypeScript sources directly, so
// tests can start a real `kiln worker` process without depending on dist/.
import { register } from 'node:module';

register('./ts-hooks.mjs', import.meta.url);
