// The README's TypeScript quick start runs as written against the embedded default.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './helpers.js';

test('README quick start runs as written', (t) => {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const code = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  t.truthy(code, 'README has a ```ts block');
  t.regex(code!, /from 'anomalyncd'/);
  // The snippet is plain modern JS as well as TS: run it as a module inside the package, so
  // 'anomalyncd' resolves through the package's own exports.
  const file = join(repoRoot, `.readme-quickstart-${process.pid}.mjs`);
  writeFileSync(file, code!);
  try {
    const r = spawnSync(process.execPath, [file], { cwd: repoRoot, encoding: 'utf8', timeout: 300_000 });
    t.is(r.status, 0, r.stderr);
    t.regex(r.stdout, /→ type \d+ \d+ regions/);
    t.regex(r.stdout, /nmi/);
  } finally {
    rmSync(file, { force: true });
  }
});
