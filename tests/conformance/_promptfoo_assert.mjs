// promptfoo's own assertion runner (`assertions.runAssertion` of the installed npm package) on given
// traces: reads [{assertion, output, spans}] as JSON on stdin, prints [{pass, score, reason} | {error}].
// Used by _conformance.py for the trace assertions, whose trace promptfoo otherwise reads from its
// OTLP receiver (`runAssertions`, exported: _promptfoo_eval.mjs calls it in its own Node process).
// Usage: node _promptfoo_assert.mjs /path/to/promptfoo/dist/src/index.js
import { pathToFileURL } from 'node:url';

export async function runAssertions(indexPath, checks) {
  const mod = await import(pathToFileURL(indexPath).href);
  const promptfoo = mod.default ?? mod;
  const out = [];
  for (const v of checks) {
    try {
      const r = await promptfoo.assertions.runAssertion({
        assertion: v.assertion,
        test: { vars: {}, assert: [v.assertion] },
        providerResponse: { output: v.output ?? '' },
        traceId: 'conformance',
        traceData: { traceId: 'conformance', spans: v.spans },
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
  const out = await runAssertions(process.argv[2], JSON.parse(await readStdin()));
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
}
