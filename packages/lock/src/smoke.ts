/**
 * A smoke run of the lock library on the embedded default (files only, no servers): several
 * processes increment one JsonStore counter under the lock; the total must be exact.
 * `pnpm smoke` runs it; the README's first command uses the pool instead once it exists.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { failure, run } from '@wtpool/core';
import { JsonStore } from './store.js';

const [, , role, file, countArg] = process.argv;

if (role === 'child') {
  const store = new JsonStore(file!, { initial: { n: 0 } });
  for (let i = 0; i < Number(countArg); i++) await store.update((d) => void d.n++);
} else {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wtpool-smoke-'));
  const target = path.join(dir, 'counter.json');
  const procs = 4;
  const each = 50;
  const self = fileURLToPath(import.meta.url);
  const started = Date.now();
  await Promise.all(
    Array.from({ length: procs }, async () => {
      const r = await run(process.execPath, [self, 'child', target, String(each)]);
      if (r.code !== 0) throw failure('ERR_INTERNAL', `child exited ${r.code}: ${r.output}`);
    }),
  );
  const n = (await new JsonStore(target, { initial: { n: 0 } }).read()).n;
  rmSync(dir, { recursive: true, force: true });
  const ok = n === procs * each;
  console.log(
    `${ok ? 'ok' : 'FAILED'}: ${procs} processes × ${each} locked updates → ${n} in ${Date.now() - started} ms`,
  );
  process.exitCode = ok ? 0 : 1;
}
