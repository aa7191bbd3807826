import { execFileSync, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { tempDir, until } from '@wtpool/testkit';
import { measureTree, freeSpace } from './disk.js';
import { parseFileNr, parseOpenFilesLimit, processFds, systemFds } from './fd.js';
import { pgSnapshot, withPg, pgConnect } from './postgres.js';
import { redisPipeline } from '@wtpool/services';
import { redisSnapshot } from './redis.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

describe('disk', () => {
  it('counts hard-linked files once and agrees with du -sb on the same tree', async () => {
    const root = tempDir('wtpool-disk-');
    dirs.push(root);
    for (const slot of ['wt-1', 'wt-2']) {
      await fs.mkdir(path.join(root, slot, 'src', 'deep'), { recursive: true });
      await fs.writeFile(path.join(root, slot, 'src', 'a.txt'), 'x'.repeat(12_345));
      await fs.writeFile(path.join(root, slot, 'src', 'deep', 'b.txt'), 'y'.repeat(777));
      await fs.symlink('src/a.txt', path.join(root, slot, 'link'));
    }
    // 1 MB shared by hard link between the two slots (the pool's node_modules clone).
    await fs.writeFile(path.join(root, 'wt-1', 'big.bin'), Buffer.alloc(1_000_000, 1));
    await fs.link(path.join(root, 'wt-1', 'big.bin'), path.join(root, 'wt-2', 'big.bin'));
    const m = await measureTree(root);
    const du = Number(execFileSync('du', ['-sb', root], { encoding: 'utf8' }).split('\t')[0]);
    expect(m.bytes).toBe(du);
    // The shared megabyte is reported as shared, and half of it is in each slot's figure.
    expect(m.shared).toBe(1_000_000);
    const rootSize = (await fs.stat(root)).size;
    const own1 = m.perEntryOwn.get('wt-1')!;
    const own2 = m.perEntryOwn.get('wt-2')!;
    expect(own1).toBe(own2);
    expect(own1 + own2 + m.shared + rootSize).toBe(m.bytes);
    expect(m.perEntry.get('wt-1')).toBe(own1 + 500_000);
    expect(m.perEntry.get('wt-2')).toBe(own2 + 500_000);
    const fsInfo = await freeSpace(path.join(root, 'does', 'not', 'exist'));
    expect(fsInfo!.free).toBeGreaterThan(0);
    expect(fsInfo!.total).toBeGreaterThanOrEqual(fsInfo!.free);
  });

  it('measures a missing root as 0 bytes', async () => {
    expect((await measureTree('/nonexistent/wtpool-root')).bytes).toBe(0);
  });
});

describe('file descriptors', () => {
  it('parses file-nr and limits', () => {
    expect(parseFileNr('1000\t0\t4000\n')).toEqual({ used: 1000, max: 4000, pct: 25 });
    expect(
      parseOpenFilesLimit(
        'Max open files            256                  4096                 files\n',
      ),
    ).toBe(256);
    expect(
      parseOpenFilesLimit(
        'Max open files            unlimited            unlimited            files\n',
      ),
    ).toBeNull();
  });

  it('reads the system figures and a process against its own limit, not ours', async () => {
    const sys = await systemFds();
    expect(sys!.used).toBeGreaterThan(0);
    expect(sys!.max).toBeGreaterThan(sys!.used);
    // A holder started with another `ulimit -n` and three extra descriptors open.
    const child = spawn(
      'sh',
      ['-c', 'ulimit -n 200; exec 3</dev/null 4</dev/null 5</dev/null; exec sleep 30'],
      {
        stdio: 'ignore',
      },
    );
    try {
      // Measure once the shell has become `sleep`: while sh is still setting up, its descriptor
      // count changes between two reads (the test used to compare such a moment).
      const comm = () => fs.readFile(`/proc/${child.pid}/comm`, 'utf8').catch(() => '');
      await until('the shell became sleep', async () => (await comm()).trim() === 'sleep', {
        everyMs: 20,
        attempts: 250,
      });
      const fds = await processFds(child.pid!);
      expect(fds!.limit).toBe(200);
      expect(fds!.open).toBe((await fs.readdir(`/proc/${child.pid}/fd`)).length);
      expect(fds!.pct).toBeCloseTo((fds!.open / 200) * 100, 0);
    } finally {
      child.kill('SIGKILL');
    }
    expect(await processFds(2 ** 22 + 12345)).toBeNull();
  });
});

describe('services', () => {
  it('counts PostgreSQL connections per database, not its own', async () => {
    const url = inject('pgUrl');
    const db = `mon_conn_${process.pid}`;
    await withPg(url, (c) => c.query(`CREATE DATABASE ${db}`));
    const u = new URL(url);
    u.pathname = `/${db}`;
    const held = await Promise.all([1, 2, 3].map(() => pgConnect(u.toString())));
    try {
      const snap = await withPg(url, pgSnapshot);
      expect(snap.byDatabase[db]).toBe(3);
      expect(snap.databases).toContain(db);
      expect(snap.max).toBe(300);
      expect(snap.total).toBeGreaterThanOrEqual(3);
    } finally {
      await Promise.all(held.map((c) => c.end()));
      await withPg(url, (c) => c.query(`DROP DATABASE ${db}`));
    }
  });

  it('reads Redis memory, clients, physical DBs and non-empty DBs', async () => {
    const url = inject('redisUrl');
    const db = 40 + (process.pid % 20);
    await redisPipeline(url, [
      ['SELECT', db],
      ['SET', 'a', '1'],
      ['SET', 'b', '2'],
    ]);
    try {
      const snap = await redisSnapshot(url);
      expect(snap.keys[db]).toBe(2);
      expect(snap.databases).toBe(64);
      expect(snap.usedMemory).toBeGreaterThan(0);
      expect(snap.clients).toBeGreaterThanOrEqual(1);
    } finally {
      await redisPipeline(url, [['SELECT', db], ['FLUSHDB']]);
    }
  });

  it('reports an unreachable server as a readable error', async () => {
    await expect(withPg('postgres://u:secret@127.0.0.1:1/x', pgSnapshot)).rejects.toThrow(
      /unreachable/,
    );
    await expect(withPg('postgres://u:secret@127.0.0.1:1/x', pgSnapshot)).rejects.not.toThrow(
      /secret/,
    );
  });
});
