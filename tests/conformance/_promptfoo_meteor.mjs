// promptfoo's own `meteor` (its dist chunk, as the evaluator loads it) on given replies: reads
// [{assertion, output}] as JSON on stdin, prints [{pass, score, reason} | {error}].
//
// promptfoo 0.121 loads the `natural` package with `await import("natural")` and reads
// `natural.PorterStemmer`, which a CommonJS package does not expose that way under Node's ESM loader:
// as shipped, every meteor check is an ERROR ("PorterStemmer should be loaded"). This runner loads the
// same chunk with that one expression replaced by `require("natural")`, so the reference is promptfoo's
// algorithm on natural's stemmer and WordNet, as promptfoo intends it.
// Usage: node _promptfoo_meteor.mjs /path/to/node_modules
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [, , nodeModules] = process.argv;
const dist = join(nodeModules, 'promptfoo', 'dist', 'src');
let chunk = null;
for (const name of readdirSync(dist).filter((n) => n.endsWith('.js'))) {
  const m = /import\("\.\/(meteor-[^"]+\.js)"\)/.exec(readFileSync(join(dist, name), 'utf8'));
  if (m) {
    chunk = m[1];
    break;
  }
}
globalThis.__shipyardNatural = createRequire(join(nodeModules, 'x.js'))('natural');
const source = readFileSync(join(dist, chunk), 'utf8')
  .replace(/^#!.*\n/, '')
  .replace('await import("natural")', 'globalThis.__shipyardNatural')
  .replace(/from "\.\/([^"]+)"/g, (_, f) => `from "${pathToFileURL(join(dist, f)).href}"`);
const { handleMeteorAssertion } = await import('data:text/javascript,' + encodeURIComponent(source));

const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', async () => {
  const out = [];
  for (const v of JSON.parse(Buffer.concat(chunks).toString('utf8'))) {
    const type = v.assertion.type;
    try {
      const r = await handleMeteorAssertion({
        assertion: v.assertion,
        inverse: type.startsWith('not-'),
        outputString: v.output,
        renderedValue: v.assertion.value,
      });
      out.push({ pass: r.pass, score: r.score, reason: r.reason });
    } catch (e) {
      out.push({ error: String((e && e.message) || e) });
    }
  }
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
});
