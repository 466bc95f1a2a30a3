// promptfoo's own `meteor` (its dist chunk, as the evaluator loads it) on given replies: reads
// [{assertion, output}] as JSON on stdin, prints [{pass, score, reason} | {error}] (`runMeteor`,
// exported: _promptfoo_eval.mjs calls it in its own Node process).
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

async function loadMeteor(nodeModules) {
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
    .replace(/^\/\/# sourceMappingURL=.*$/m, '') // relative to the chunk's file, not to a data: URL
    .replace('await import("natural")', 'globalThis.__shipyardNatural')
    .replace(/from "\.\/([^"]+)"/g, (_, f) => `from "${pathToFileURL(join(dist, f)).href}"`);
  return (await import('data:text/javascript,' + encodeURIComponent(source))).handleMeteorAssertion;
}

export async function runMeteor(nodeModules, checks) {
  const handleMeteorAssertion = await loadMeteor(nodeModules);
  const out = [];
  for (const v of checks) {
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
  return out;
}

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const out = await runMeteor(process.argv[2], JSON.parse(await readStdin()));
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
}
