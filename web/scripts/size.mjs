// Records the compressed JavaScript the environments page loads first: the
// entry chunk and its static imports, read from the built index.html, gzipped.
// Fails above the budget so a heavy dependency cannot slip in unnoticed.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const BUDGET_BYTES = 300 * 1024;
const html = readFileSync('dist/index.html', 'utf8');
const scripts = [...html.matchAll(/<(?:script[^>]*src|link[^>]*rel="modulepreload"[^>]*href)="([^"]+\.js)"/g)].map((m) => m[1]);
let total = 0;
const rows = scripts.map((src) => {
  const gz = gzipSync(readFileSync(`dist${src}`), { level: 9 }).length;
  total += gz;
  return `${src}: ${(gz / 1024).toFixed(1)} KiB gzip`;
});
const report = `${rows.join('\n')}\ninitial JS of the environments page: ${(total / 1024).toFixed(1)} KiB gzip (budget ${BUDGET_BYTES / 1024} KiB)\n`;
process.stdout.write(report);
if (total > BUDGET_BYTES) process.exit(1);
