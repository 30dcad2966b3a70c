// Fails when web/openapi.json differs from the document the server serves
// (given as the first argument), or when src/api/schema.d.ts is not what
// openapi-typescript generates from the snapshot. `scripts/web.sh update-api` fixes both.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const served = process.argv[2];
if (!served) {
  console.error('usage: node scripts/check-api.mjs SERVED_OPENAPI_JSON');
  process.exit(2);
}

const canonical = (path) => JSON.stringify(JSON.parse(readFileSync(path, 'utf8')));
let failed = false;

if (canonical('openapi.json') !== canonical(served)) {
  console.error('web/openapi.json is stale: the server serves a different document. Run scripts/web.sh update-api and commit the result.');
  failed = true;
}

const generated = join(mkdtempSync(join(tmpdir(), 'berth-schema-')), 'schema.d.ts');
execFileSync('npx', ['--no-install', 'openapi-typescript', 'openapi.json', '-o', generated, '--silent'], { stdio: 'inherit' });
if (readFileSync(generated, 'utf8') !== readFileSync('src/api/schema.d.ts', 'utf8')) {
  console.error('src/api/schema.d.ts was not generated from web/openapi.json. Run npm run gen:api and commit the result.');
  failed = true;
}

if (failed) process.exit(1);
console.log('OpenAPI snapshot and generated types match the server.');
