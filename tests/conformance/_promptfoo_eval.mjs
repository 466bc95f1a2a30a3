// promptfoo's own CLI, `promptfoo eval ...`, on several configs in ONE Node process: loading promptfoo's
// CLI costs about 2 s of CPU, its eval of a config a fraction of that. Reads [{dir, args}] as JSON on
// stdin; for each, in order: the working directory becomes `dir` and the CLI's `main()` runs with `args`
// as its command line (`eval -c ... -o ...`), exactly as `promptfoo <args>` would. A job
// {script, function, arg, input} instead calls that function of the script beside this one (the runners
// of _promptfoo_assert.mjs and _promptfoo_meteor.mjs). Writes [{exitCode} | {output} | {error}] as JSON
// to the given status file (stdout is the CLI's own output).
//
// main.js only runs `main()` when it is the program itself, and after it shuts promptfoo down (closes its
// HTTP dispatcher, schedules process.exit): a module hook loads main.js with those two lines changed
// (`main` exported, never run on import); everything else is the installed package as shipped.
// Usage: node _promptfoo_eval.mjs /path/to/node_modules /path/to/status.json
import { writeFileSync } from 'node:fs';
import { register } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [, , nodeModules, statusPath] = process.argv;

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}
const mainPath = join(nodeModules, 'promptfoo', 'dist', 'src', 'main.js');
const mainUrl = pathToFileURL(mainPath).href;

const hooks = `
let target;
export async function initialize(data) { target = data.target; }
export async function load(url, context, nextLoad) {
  const loaded = await nextLoad(url, context);
  if (url !== target) return loaded;
  let source = new TextDecoder().decode(loaded.source);
  const edits = [
    ['isMain = isMainModule(import.meta.url, process.argv[1]);', 'isMain = false;'],
    ['\\nexport {};\\n', '\\nexport { main };\\n'],
  ];
  for (const [from, to] of edits) {
    if (source.split(from).length !== 2) throw new Error('promptfoo main.js: expected one ' + JSON.stringify(from));
    source = source.replace(from, to);
  }
  return { ...loaded, source, shortCircuit: true };
}
`;
register('data:text/javascript,' + encodeURIComponent(hooks), { data: { target: mainUrl } });
const { main } = await import(mainUrl);

const jobs = JSON.parse(await readStdin());
const status = [];
for (const job of jobs) {
  if (job.script) {
    // promptfoo's own checks run directly (`runAssertions` of _promptfoo_assert.mjs, `runMeteor` of
    // _promptfoo_meteor.mjs) on their input, here rather than in a Node process of their own
    try {
      const mod = await import(pathToFileURL(join(import.meta.dirname, job.script)).href);
      status.push({ output: await mod[job.function](job.arg, job.input) });
    } catch (e) {
      status.push({ error: String((e && e.stack) || e) });
    }
    continue;
  }
  process.chdir(job.dir);
  process.argv = [process.argv[0], mainPath, ...job.args];
  process.exitCode = undefined;
  try {
    await main();
    status.push({ exitCode: process.exitCode ?? 0 });
  } catch (e) {
    status.push({ error: String((e && e.stack) || e) });
  }
}
writeFileSync(statusPath, JSON.stringify(status));
process.exit(0);
