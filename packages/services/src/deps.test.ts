import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { slotNames } from '@wtpool/config';
import { installDeps } from './index.js';
import { firstCause } from './deps.js';
import { fixture, type Fixture } from './fixtures.testutil.js';

let f: Fixture | undefined;
afterEach(async () => {
  await f?.cleanup();
  f = undefined;
});

const PROJECT = {
  'package.json': '{"name":"root","private":true}\n',
  'pnpm-lock.yaml': "lockfileVersion: '9.0'\n",
  'packages/a/package.json': '{"name":"a"}\n',
  '.gitignore': 'node_modules\n',
};

/** A main checkout with a pnpm-like installed tree: store files, relative symlinks, .bin shims. */
async function installedProject(): Promise<{ fx: Fixture; wt: string }> {
  const fx = await fixture({}, PROJECT);
  const nm = path.join(fx.repo.dir, 'node_modules');
  await fs.mkdir(path.join(nm, '.pnpm/dep@1.0.0/node_modules/dep'), { recursive: true });
  await fs.writeFile(
    path.join(nm, '.pnpm/dep@1.0.0/node_modules/dep/index.js'),
    'module.exports = 1;\n',
  );
  await fs.symlink('.pnpm/dep@1.0.0/node_modules/dep', path.join(nm, 'dep'));
  await fs.mkdir(path.join(nm, '.bin'));
  await fs.writeFile(
    path.join(nm, '.bin/dep'),
    `#!/bin/sh\nexport NODE_PATH="${fx.repo.dir}/node_modules/.pnpm/node_modules"\nexec node "$basedir/../dep/index.js"\n`,
    { mode: 0o755 },
  );
  // A tool's private cache: its mode must survive the clone (0700 is not the umask's default).
  await fs.mkdir(path.join(nm, '.cache/tool'), { recursive: true, mode: 0o700 });
  await fs.chmod(path.join(nm, '.cache/tool'), 0o700);
  const anm = path.join(fx.repo.dir, 'packages/a/node_modules');
  await fs.mkdir(anm, { recursive: true });
  await fs.symlink('../../../node_modules/.pnpm/dep@1.0.0/node_modules/dep', path.join(anm, 'dep'));
  const wt = slotNames(fx.loaded.config, fx.loaded.repo, 1).path;
  await fx.repo.git(['worktree', 'add', '-q', '--no-track', '-b', 'pool/wt-1/x', wt, 'main']);
  return { fx, wt };
}

describe('dependencies', () => {
  it('auto hard-links node_modules when lockfiles match: same inodes, symlinks kept, shims rewritten', async () => {
    const { fx, wt } = await installedProject();
    f = fx;
    const r = await installDeps(fx.repo.dir, wt, { strategy: 'auto', command: null });
    expect(r.strategy).toBe('hardlink');
    const file = 'node_modules/.pnpm/dep@1.0.0/node_modules/dep/index.js';
    expect((await fs.stat(path.join(wt, file))).ino).toBe(
      (await fs.stat(path.join(fx.repo.dir, file))).ino,
    );
    expect((await fs.lstat(path.join(wt, 'node_modules/dep'))).isSymbolicLink()).toBe(true);
    expect(readFileSync(path.join(wt, 'node_modules/dep/index.js'), 'utf8')).toContain(
      'module.exports',
    );
    // The workspace package's node_modules too, resolving inside the slot.
    expect(await fs.realpath(path.join(wt, 'packages/a/node_modules/dep'))).toBe(
      path.join(wt, 'node_modules/.pnpm/dep@1.0.0/node_modules/dep'),
    );
    const shim = readFileSync(path.join(wt, 'node_modules/.bin/dep'), 'utf8');
    expect(shim).toContain(`${wt}/node_modules/.pnpm`);
    expect(shim).not.toContain(`${fx.repo.dir}/`);
    expect(readFileSync(path.join(fx.repo.dir, 'node_modules/.bin/dep'), 'utf8')).toContain(
      fx.repo.dir,
    );
    expect((await fs.stat(path.join(wt, 'node_modules/.bin/dep'))).mode & 0o111).toBeTruthy();
    expect((await fs.stat(path.join(wt, 'node_modules/.cache/tool'))).mode & 0o777).toBe(0o700);
    // Nothing to commit in the slot.
    expect(await fx.repo.git(['status', '--porcelain'], wt)).toBe('');
    // Unchanged lockfile: nothing runs again.
    expect(await installDeps(fx.repo.dir, wt, { strategy: 'auto', command: null })).toMatchObject({
      strategy: 'skipped',
      reason: 'lockfile unchanged',
    });
  });

  it('re-runs only when the slot lockfile hash changed; hardlink refuses a different lockfile', async () => {
    const { fx, wt } = await installedProject();
    f = fx;
    const count = path.join(fx.repo.sandbox, 'count');
    const cmd = {
      strategy: 'command' as const,
      command: `echo run >> ${count}; mkdir -p node_modules`,
    };
    const runs = () => readFileSync(count, 'utf8').trim().split('\n').length;
    expect(await installDeps(fx.repo.dir, wt, cmd)).toMatchObject({ strategy: 'command' });
    await installDeps(fx.repo.dir, wt, cmd);
    expect(runs()).toBe(1);
    await fs.writeFile(path.join(wt, 'pnpm-lock.yaml'), "lockfileVersion: '9.0'\n# changed\n");
    await installDeps(fx.repo.dir, wt, cmd);
    expect(runs()).toBe(2);
    await fs.rm(path.join(wt, 'node_modules'), { recursive: true });
    await expect(
      installDeps(fx.repo.dir, wt, { strategy: 'hardlink', command: null }),
    ).rejects.toMatchObject({
      code: 'ERR_DEPS',
    });
  });

  it('auto without a lockfile installs without writing one, so the slot stays clean', async () => {
    f = await fixture(
      {},
      { 'package.json': '{"name":"nolock","private":true}\n', '.gitignore': 'node_modules\n' },
    );
    const wt = path.join(f.repo.sandbox, 'slot');
    await f.repo.git(['worktree', 'add', '-q', '--detach', wt]);
    expect(await installDeps(f.repo.dir, wt, { strategy: 'auto', command: null })).toMatchObject({
      strategy: 'npm',
    });
    expect(await f.repo.git(['status', '--porcelain'], wt)).toBe('');
  });

  it('none and projects without package.json do nothing', async () => {
    f = await fixture({});
    expect(
      await installDeps(f.repo.dir, f.repo.dir, { strategy: 'auto', command: null }),
    ).toMatchObject({
      strategy: 'skipped',
      reason: 'no package.json',
    });
    expect(
      await installDeps(f.repo.dir, f.repo.dir, { strategy: 'none', command: null }),
    ).toMatchObject({
      strategy: 'skipped',
    });
  });
});

describe('firstCause: the line of a failed install that says why', () => {
  it('pnpm: its ERR_PNPM line, not the hint or list at the end', () => {
    const out = [
      'Scope: all 3 workspace projects',
      ' ERR_PNPM_OUTDATED_LOCKFILE  Cannot install with "frozen-lockfile" because pnpm-lock.yaml is not up to date with <ROOT>/package.json',
      '',
      'Note that in CI environments this setting is true by default. If you still need to run install in such cases, use "pnpm install --no-frozen-lockfile"',
      '',
      '  Failure reason:',
      '* 1 dependencies were added: lp@file:./vendor/lp',
    ].join('\n');
    expect(firstCause(out)).toBe(
      'ERR_PNPM_OUTDATED_LOCKFILE  Cannot install with "frozen-lockfile" because pnpm-lock.yaml is not up to date with <ROOT>/package.json',
    );
  });

  it('a failed dependency script: its own first error line, not those of scripts that recovered', () => {
    const out = [
      'Progress: resolved 1144, reused 103, downloaded 868, added 376',
      '.../node_modules/unrs-resolver postinstall: [napi-postinstall@0.3.4] Failed to find package "@unrs/resolver-binding-linux-x64-gnu" on the file system',
      '.../node_modules/unrs-resolver postinstall: Done',
      '.../node_modules/playwright-chromium install: Downloading Chrome for Testing 151.0 from https://cdn.playwright.dev/x.zip',
      '.../node_modules/playwright-chromium install: Error: getaddrinfo ENOTFOUND cdn.playwright.dev',
      '.../node_modules/playwright-chromium install: Error: Download failure, code=1',
      '.../node_modules/playwright-chromium install: Failed',
      ' ELIFECYCLE  Command failed with exit code 1.',
    ].join('\n');
    expect(firstCause(out)).toBe(
      '.../node_modules/playwright-chromium install: Error: getaddrinfo ENOTFOUND cdn.playwright.dev',
    );
  });

  it('npm: the code joined to the line after it; warnings and colours skipped', () => {
    const out = [
      '\x1b[33mnpm warn\x1b[39m deprecated inflight@1.0.6: not supported',
      'npm error code ETARGET',
      'npm error notarget No matching version found for left-pad@99.0.0.',
      'npm error notarget In most cases you or one of your dependencies are requesting',
      'npm error A complete log of this run can be found in: /root/.npm/_logs/x.log',
    ].join('\n');
    expect(firstCause(out)).toBe(
      'ETARGET: notarget No matching version found for left-pad@99.0.0.',
    );
  });

  it('nothing that looks like a cause: the last line', () => {
    expect(firstCause('step one\nstep two\n\n')).toBe('step two');
  });
});
