/**
 * `pool setup`'s detection of slot setup (issue 24): a prisma schema, a compose file and the
 * .env files of a repository become commented keys of a configuration that still validates.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseYamlFile, validateConfig } from '@wtpool/config';
import { makeTempRepo, tempDir } from '@wtpool/testkit';
import { configText, detect } from './setup.js';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => fs.rm(d, { recursive: true, force: true })));
});

describe('pool setup: slot setup keys', () => {
  it('detects a prisma schema, a compose file and .env files, and writes them commented', async () => {
    const root = tempDir('wtpool-setup-');
    dirs.push(root);
    await fs.mkdir(path.join(root, 'prisma'));
    await fs.writeFile(path.join(root, 'prisma/schema.prisma'), 'generator client {}\n');
    await fs.writeFile(path.join(root, 'docker-compose.yml'), 'services: {}\n');
    await fs.writeFile(path.join(root, '.env'), 'A=1\n');
    await fs.writeFile(path.join(root, 'package.json'), '{ "name": "x" }\n');
    const d = await detect(root);
    expect(d).toMatchObject({
      prismaSchema: 'prisma/schema.prisma',
      composeFile: 'docker-compose.yml',
      envFiles: ['.env'],
      worktreeInclude: false,
    });
    const text = configText(d);
    expect(text).toContain('#   - npx prisma generate # prisma schema found: prisma/schema.prisma');
    expect(text).toContain('# include: [.env]');
    expect(text).toContain('docker-compose.yml found');
    expect(text).toContain('# names: [web, api]');
    // Commented: the written configuration is the defaults for these keys, and valid.
    const file = path.join(root, 'pool.config.yaml');
    await fs.writeFile(file, text);
    const cfg = validateConfig(parseYamlFile(file), file);
    expect(cfg.pool.setup).toEqual([]);
    expect(cfg.pool.include).toEqual([]);
    expect(cfg.ports.names).toEqual([]);
  });

  it('writes pool.base when the main checkout is on a branch other than main (the pool cannot start otherwise)', async () => {
    const repo = await makeTempRepo({ files: { 'package.json': '{ "name": "x" }\n' } });
    try {
      await repo.git(['branch', '-m', 'main', 'v1.x']);
      const d = await detect(repo.dir);
      expect(d.branch).toBe('v1.x');
      const file = path.join(repo.dir, 'pool.config.yaml');
      await fs.writeFile(file, configText(d));
      expect(validateConfig(parseYamlFile(file), file).pool.base).toBe('v1.x');
      // On main (the default) the key stays commented.
      await repo.git(['branch', '-m', 'v1.x', 'main']);
      const onMain = configText(await detect(repo.dir));
      expect(onMain).toContain('# pool:');
      expect(onMain).not.toMatch(/^\s*base:/m);
    } finally {
      await repo.cleanup();
    }
  });
});
