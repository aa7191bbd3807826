import { statSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '@wtpool/testkit';
import {
  JsonStore,
  FencingCounter,
  createExclusive,
  ensurePrivateDir,
  withLock,
  writeFileAtomic,
  writePrivateFile,
} from './index.js';

const mode = (p: string) => statSync(p).mode & 0o777;

/** Every file and directory under `root` (inclusive of nothing above it), with its mode. */
function walk(root: string): Array<[string, number, boolean]> {
  const out: Array<[string, number, boolean]> = [];
  for (const e of readdirSync(root, { withFileTypes: true })) {
    const p = path.join(root, e.name);
    out.push([p, mode(p), e.isDirectory()]);
    if (e.isDirectory()) out.push(...walk(p));
  }
  return out;
}

describe.each([0o000, 0o022, 0o077])('secrets at rest with umask %o', (umask) => {
  let previous: number;
  beforeEach(() => {
    previous = process.umask(umask);
  });
  afterEach(() => {
    process.umask(previous);
  });

  it('store files, versions, exclusive files, the fencing counter and lock dirs are 0600 / 0700', async () => {
    const root = tempDir();
    const state = path.join(root, 'state', 'nested');
    const store = new JsonStore(path.join(state, 'registry.json'), {
      initial: { password: '' },
    });
    await store.update((d) => void (d.password = 'hunter2'));
    await store.update((d) => void (d.password = 'hunter3'));
    await new FencingCounter(path.join(state, 'fence.json')).next();
    expect(await createExclusive(path.join(state, 'lease-1.json'), { token: 1 })).toBe(true);
    await writeFileAtomic(path.join(state, 'conf'), 'requirepass x\n');
    await writePrivateFile(path.join(root, 'cache', 'config-cache.json'), '{}\n');
    await withLock(
      path.join(state, 'held'),
      () => {
        // While held, the lock directory and its holder record are private too.
        const entries = walk(state).filter(([p]) => p.includes('held.lock'));
        expect(entries.length).toBeGreaterThanOrEqual(2);
        for (const [p, m, dir] of entries) expect([p, m]).toEqual([p, dir ? 0o700 : 0o600]);
      },
      { recordHolderAfter: 0 },
    );
    const all = walk(root);
    expect(all.filter(([p]) => p.endsWith('.v2')).length).toBe(1);
    for (const [p, m, dir] of all) expect([p, m]).toEqual([p, dir ? 0o700 : 0o600]);
  });
});

describe('ensurePrivateDir', () => {
  it('tightens an existing directory and the parents it creates, not the ones that existed', () => {
    const root = tempDir();
    const rootMode = mode(root);
    ensurePrivateDir(path.join(root, 'a', 'b', 'c'));
    expect(mode(path.join(root, 'a'))).toBe(0o700);
    expect(mode(path.join(root, 'a', 'b', 'c'))).toBe(0o700);
    expect(mode(root)).toBe(rootMode);
  });

  it('an explicit mode is kept exactly (a hook script stays executable)', async () => {
    const file = path.join(tempDir(), 'hook');
    await writeFileAtomic(file, '#!/bin/sh\n', { mode: 0o755 });
    expect(mode(file)).toBe(0o755);
  });
});
