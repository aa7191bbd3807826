import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir, until } from '@wtpool/testkit';
import {
  JsonStore,
  StoreCorruptError,
  withLock,
  LockTimeoutError,
  createExclusive,
  writeFileAtomic,
  readJsonFile,
} from './index.js';

describe('JsonStore', () => {
  it('starts from the initial value and versions every write', async () => {
    const file = path.join(tempDir(), 'sub', 'state.json');
    const store = new JsonStore(file, { initial: { items: [] as string[] } });
    expect(await store.read()).toEqual({ items: [] });
    expect(await store.update((d) => d.items.push('a'))).toBe(1);
    await store.update((d) => void d.items.push('b'));
    const v = await store.readVersioned();
    expect(v.version).toBe(2);
    expect(v.data.items).toEqual(['a', 'b']);
  });

  it('serves many concurrent callers of one process, each exactly once', async () => {
    const file = path.join(tempDir(), 'state.json');
    const store = new JsonStore(file, { initial: { n: 0, order: [] as number[] } });
    await Promise.all(
      Array.from({ length: 64 }, (_, i) => store.update((d) => void (d.n++, d.order.push(i)))),
    );
    const v = await store.readVersioned();
    expect(v.data.n).toBe(64);
    expect(v.version).toBe(64);
    // In-process callers queue first come, first served.
    expect(v.data.order).toEqual(Array.from({ length: 64 }, (_, i) => i));
  });

  it('writes nothing when the transaction throws', async () => {
    const file = path.join(tempDir(), 'state.json');
    const store = new JsonStore(file, { initial: { n: 1 } });
    await store.update((d) => void (d.n = 2));
    await expect(
      store.update((d) => {
        d.n = 99;
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect((await store.readVersioned()).data.n).toBe(2);
    expect((await store.readVersioned()).version).toBe(1);
  });

  it('names the path of an unparseable file and points at the last good version', async () => {
    const file = path.join(tempDir(), 'state.json');
    const store = new JsonStore(file, { initial: { n: 0 } });
    for (let i = 0; i < 3; i++) await store.update((d) => void d.n++);
    // Corrupt it in place, as an editor or a bad disk would (same inode as the v3 marker).
    const fh = await fs.open(file, 'r+');
    await fh.write('{"version": 3, "da', 0);
    await fh.truncate(18);
    await fh.close();
    const err = await store.read().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreCorruptError);
    const e = err as StoreCorruptError;
    expect(e.message).toContain(file);
    expect(e.details?.lastGood).toBe(`${file}.v2`);
    expect(e.hint).toContain(`cp ${file}.v2 ${file}`);
    expect(JSON.parse(await fs.readFile(`${file}.v2`, 'utf8')).data.n).toBe(2);
    // Updates refuse too: nothing is written on top of a corrupt file.
    await expect(store.update((d) => void d.n++)).rejects.toBeInstanceOf(StoreCorruptError);
  });

  it('keeps a bounded number of earlier versions', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'state.json');
    const store = new JsonStore(file, { initial: { n: 0 } });
    for (let i = 0; i < 40; i++) await store.update((d) => void d.n++);
    const markers = (await fs.readdir(dir)).filter((n) => /^state\.json\.v\d+$/.test(n));
    expect(markers.length).toBe(32);
    expect(existsSync(`${file}.v40`)).toBe(true);
    expect(existsSync(`${file}.v8`)).toBe(false);
  });
});

describe('withLock', () => {
  it('times out naming the holder', async () => {
    const target = path.join(tempDir(), 'x');
    let release: (() => void) | undefined;
    const held = withLock(target, () => new Promise<void>((r) => (release = r)), {
      purpose: 'test holder',
    });
    // The holder is inside its critical section once `release` is set.
    await until('the holder holds the lock', () => release !== undefined);
    const err = await withLock(target, () => 1, { timeout: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockTimeoutError);
    expect((err as Error).message).toMatch(
      new RegExp(`pid ${process.pid} on .* since .*test holder`),
    );
    release!();
    await held;
    expect(await withLock(target, () => 2)).toBe(2);
  });

  it('aborts the critical section instead of crashing when the lock is compromised', async () => {
    const target = path.join(tempDir(), 'y');
    const err = await withLock(
      target,
      async (lock) => {
        // Someone removes our lock directory behind our back; the refresh notices.
        await fs.rm(`${target}.lock`, { recursive: true, force: true });
        await new Promise<void>((resolve) =>
          lock.signal.addEventListener('abort', () => resolve()),
        );
        lock.assertHeld();
      },
      { stale: 2000 },
    ).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('ERR_LOCK_COMPROMISED');
  });
});

describe('atomic files', () => {
  it('createExclusive: first wins, second loses, content intact', async () => {
    const f = path.join(tempDir(), 'lease.json');
    expect(await createExclusive(f, { a: 1 })).toBe(true);
    expect(await createExclusive(f, { a: 2 })).toBe(false);
    expect(await readJsonFile(f)).toEqual({ a: 1 });
  });

  it('writeFileAtomic replaces without leaving temp files', async () => {
    const dir = tempDir();
    const f = path.join(dir, 'a.json');
    await writeFileAtomic(f, '{"x":1}');
    await writeFileAtomic(f, '{"x":2}');
    expect(await readJsonFile(f)).toEqual({ x: 2 });
    expect(await fs.readdir(dir)).toEqual(['a.json']);
    expect(await readJsonFile(path.join(dir, 'missing.json'))).toBeUndefined();
  });
});
