import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '@wtpool/testkit';
import { readEnvFile, writeEnvFile } from './envfile.js';

const execFileP = promisify(execFile);
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => fs.rm(d, { recursive: true, force: true })));
});

describe('.env.worktree writer', () => {
  it('quotes values so that a shell reads them back unchanged; mode 0600; bad keys refused', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const file = path.join(dir, 'x.env');
    const env = { A: 'it\'s $HOME `x` "q"', B: 'postgres://u:p@h:5/db?x=1&y=2', C: '' };
    await writeEnvFile(file, env);
    const out = await execFileP('sh', [
      '-c',
      'set -a; . "$0"; printf "%s\\n" "$A" "$B" "$C"',
      file,
    ]);
    expect(out.stdout).toBe(`${env.A}\n${env.B}\n\n`);
    expect(await readEnvFile(file)).toEqual(env);
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    await expect(writeEnvFile(file, { 'BAD KEY': 'x' })).rejects.toThrow(/invalid environment/);
    await expect(writeEnvFile(file, { A: 'x\ny' })).rejects.toThrow(/newline/);
    expect(await readEnvFile(file)).toEqual(env);
  });
});
