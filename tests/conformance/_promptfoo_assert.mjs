// promptfoo's own assertion runner (`assertions.runAssertion` of the installed npm package) on given
// traces: reads [{assertion, output, spans}] as JSON on stdin, prints [{pass, score, reason} | {error}].
// Used by _conformance.py for the trace assertions, whose trace promptfoo otherwise reads from its
// OTLP receiver. Usage: node _promptfoo_assert.mjs /path/to/promptfoo/dist/src/index.js
const [, , indexPath] = process.argv;
const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', async () => {
  const { pathToFileURL } = await import('node:url');
  const mod = await import(pathToFileURL(indexPath).href);
  const promptfoo = mod.default ?? mod;
  const out = [];
  for (const v of JSON.parse(Buffer.concat(chunks).toString('utf8'))) {
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
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
});
