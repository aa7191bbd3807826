/**
 * The slot's own configuration, on real git repositories: which files of the main checkout are
 * included (ignored ones only, never .git, never through a symlink out of the repository),
 * copies keeping the mode, the kept paths a release gets, and the named ports / squatters.
 */
import { promises as fs, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTempRepo, tempDir, type TempRepo } from '@wtpool/testkit';
import { listIncludes, syncIncludes } from './include.js';
import { portEnv, portSquatters } from './ports.js';
import { keptPaths } from './slot-config.js';
import { setupInputsHash, setupOutputs } from './setup-commands.js';

const repos: TempRepo[] = [];
afterEach(async () => {
  await Promise.all(repos.splice(0).map((r) => r.cleanup()));
});

async function repoWith(files: Record<string, string>) {
  const repo = await makeTempRepo({ files });
  repos.push(repo);
  return repo;
}

describe('included files', () => {
  it('lists only ignored files the patterns select, never .git, never a symlink out', async () => {
    const repo = await repoWith({
      '.gitignore': '.env\n*.local\nsecrets/\nnode_modules/\nout-link\n',
      '.worktreeinclude': '.env\nsecrets/\ntracked.txt\nout-link\nnode_modules/\n',
      'tracked.txt': 'tracked\n',
    });
    const outside = tempDir('wtpool-outside-');
    await fs.writeFile(path.join(outside, 'x'), 'outside\n');
    await fs.writeFile(path.join(repo.dir, '.env'), 'A=1\n');
    await fs.writeFile(path.join(repo.dir, 'app.local'), 'local\n');
    await fs.mkdir(path.join(repo.dir, 'secrets/deep'), { recursive: true });
    await fs.writeFile(path.join(repo.dir, 'secrets/deep/key.pem'), 'key\n');
    await fs.mkdir(path.join(repo.dir, 'node_modules/p'), { recursive: true });
    await fs.writeFile(path.join(repo.dir, 'node_modules/p/.env'), 'dep\n');
    await fs.symlink(path.join(outside, 'x'), path.join(repo.dir, 'out-link'));
    // pool.include adds a pattern; node_modules is skipped as pool.keep says.
    const r = await listIncludes(repo.dir, ['*.local'], ['node_modules']);
    expect(r.files).toEqual(['.env', 'app.local', 'secrets/deep/key.pem']);
    expect(r.skipped).toEqual(['out-link (a symlink out of the repository)']);
    await fs.rm(outside, { recursive: true, force: true });
  });

  it('copies keep the mode and are re-copied only when the source changes; kept paths follow', async () => {
    const repo = { dir: tempDir('wtpool-main-') }; // copying needs no git
    const slot = tempDir('wtpool-slot-');
    await fs.writeFile(path.join(repo.dir, '.env'), 'A=1\n', { mode: 0o600 });
    await fs.chmod(path.join(repo.dir, '.env'), 0o600);
    await fs.mkdir(path.join(repo.dir, 'cfg'));
    await fs.writeFile(path.join(repo.dir, 'cfg/dev.json'), '{}\n');
    const files = ['.env', 'cfg/dev.json'];
    const first = await syncIncludes(repo.dir, slot, files, 'copy', {});
    expect(first.written).toEqual(files);
    expect(statSync(path.join(slot, '.env')).mode & 0o777).toBe(0o600);
    expect(await fs.readFile(path.join(slot, 'cfg/dev.json'), 'utf8')).toBe('{}\n');
    const again = await syncIncludes(repo.dir, slot, files, 'copy', first.stamps);
    expect(again.written).toEqual([]);
    await fs.writeFile(path.join(repo.dir, '.env'), 'A=2\n');
    const changed = await syncIncludes(repo.dir, slot, files, 'copy', again.stamps);
    expect(changed.written).toEqual(['.env']);
    expect(await fs.readFile(path.join(slot, '.env'), 'utf8')).toBe('A=2\n');
    expect(statSync(path.join(slot, '.env')).mode & 0o777).toBe(0o600);

    // Recorded, unchanged: kept (and cfg/, which holds nothing else); changed by the agent: not.
    const stateDir = tempDir('wtpool-state-');
    await fs.mkdir(path.join(stateDir, 'slot-config'));
    await fs.writeFile(
      path.join(stateDir, 'slot-config', 'wt-1.json'),
      JSON.stringify({ commit: null, includes: changed.stamps, setup: null }),
    );
    expect((await keptPaths(stateDir, 'wt-1', slot)).sort()).toEqual([
      '/.env',
      '/cfg',
      '/cfg/dev.json',
    ]);
    await fs.writeFile(path.join(slot, 'cfg/agent.json'), 'mine\n');
    await fs.writeFile(path.join(slot, '.env'), 'A=agent\n');
    expect(await keptPaths(stateDir, 'wt-1', slot)).toEqual(['/cfg/dev.json']);
    await Promise.all(
      [slot, stateDir, repo.dir].map((d) => fs.rm(d, { recursive: true, force: true })),
    );
  });

  it('symlink mode links to the main checkout', async () => {
    const repo = { dir: tempDir('wtpool-main-') };
    const slot = tempDir('wtpool-slot-');
    await fs.writeFile(path.join(repo.dir, '.env'), 'A=1\n');
    const r = await syncIncludes(repo.dir, slot, ['.env'], 'symlink', {});
    expect(await fs.readlink(path.join(slot, '.env'))).toBe(path.join(repo.dir, '.env'));
    expect((await syncIncludes(repo.dir, slot, ['.env'], 'symlink', r.stamps)).written).toEqual([]);
    await Promise.all([slot, repo.dir].map((d) => fs.rm(d, { recursive: true, force: true })));
  });
});

describe('setup inputs and outputs', () => {
  it('the hash follows the inputs and the command list, not other files', async () => {
    const repo = await repoWith({ 'schema.txt': 'v1\n', 'other.txt': 'x\n' });
    const h1 = await setupInputsHash(repo.dir, ['gen'], ['schema.txt']);
    await repo.commit({ 'other.txt': 'y\n' });
    expect(await setupInputsHash(repo.dir, ['gen'], ['schema.txt'])).toBe(h1);
    expect(await setupInputsHash(repo.dir, ['gen', 'more'], ['schema.txt'])).not.toBe(h1);
    await repo.commit({ 'schema.txt': 'v2\n' });
    expect(await setupInputsHash(repo.dir, ['gen'], ['schema.txt'])).not.toBe(h1);
  });

  it('outputs are the ignored files outside pool.keep and the excluded ones', async () => {
    const repo = await repoWith({ '.gitignore': 'gen/\nnode_modules/\n.env\n' });
    await fs.mkdir(path.join(repo.dir, 'gen/sub'), { recursive: true });
    await fs.writeFile(path.join(repo.dir, 'gen/sub/a.ts'), 'a\n');
    await fs.mkdir(path.join(repo.dir, 'node_modules/.prisma'), { recursive: true });
    await fs.writeFile(path.join(repo.dir, 'node_modules/.prisma/c.js'), 'c\n');
    await fs.writeFile(path.join(repo.dir, '.env'), 'A=1\n');
    const out = await setupOutputs(repo.dir, ['node_modules'], new Set(['.env']));
    expect(Object.keys(out)).toEqual(['gen/sub/a.ts']);
  });
});

describe('named ports', () => {
  it('gives <NAME>_PORT from the start of the block, besides PORT', () => {
    expect(portEnv({ start: 5010, end: 5019 }, ['web', 'api', 'db'])).toEqual({
      PORT: '5010',
      PORT_RANGE_START: '5010',
      PORT_RANGE_END: '5019',
      WEB_PORT: '5010',
      API_PORT: '5011',
      DB_PORT: '5012',
    });
  });

  it("reports a listener in the block whose process is not the slot's", async () => {
    const srv = net.createServer();
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', resolve);
    });
    const port = (srv.address() as net.AddressInfo).port;
    try {
      // This process works in the project checkout: not inside a slot directory.
      const slot = tempDir('wtpool-slot-');
      expect(await portSquatters(port, port, slot)).toEqual([
        { port, pid: process.pid, command: expect.any(String) },
      ]);
      // Its own working directory counts as the slot's.
      expect(await portSquatters(port, port, process.cwd())).toEqual([]);
      await fs.rm(slot, { recursive: true, force: true });
    } finally {
      srv.close();
    }
  });
});
