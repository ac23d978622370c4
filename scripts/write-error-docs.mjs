// Regenerates docs/errors.md from the catalogue (run after adding a code; a test checks they agree).
import { writeFileSync } from 'node:fs';
import { errorCatalogue } from '../dist/core/error-catalogue.js';
import { STATUS_OF } from '../dist/api/problem.js';

let out = `# Kiln error codes

Every error Kiln returns over HTTP is \`application/problem+json\` with a stable \`code\`:

\`\`\`json
{ "type": "https://kiln.dev/errors/KILN_MACHINE_NOT_FOUND", "title": "No such machine", "status": 404,
  "code": "KILN_MACHINE_NOT_FOUND", "detail": "no machine \\"52:54:00:00:00:99\\"" }
\`\`\`

Codes never change meaning; new ones may be added. The CLI exits with the status listed in the README
for the error's kind. This list and \`src/core/error-catalogue.ts\` are kept equal by a test.

| code | HTTP status | meaning |
|---|---|---|
`;
for (const [code, spec] of Object.entries(errorCatalogue)) out += `| \`${code}\` | ${STATUS_OF[spec.kind]} | ${spec.title} |\n`;
writeFileSync(new URL('../docs/errors.md', import.meta.url), out);
