/** Test fixtures of @wtpool/services: a temp repo with a pool config and slot contexts. */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, slotNames, type LoadedConfig } from '@wtpool/config';
import { makeTempRepo, type TempRepo } from '@wtpool/testkit';
import type { ProviderContext } from './provider.js';

export const WORKER = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../test/worker.mjs',
);

export interface Fixture {
  repo: TempRepo;
  loaded: LoadedConfig;
  events: { type: string; details: Record<string, unknown> }[];
  warnings: string[];
  ctx(n: number): ProviderContext;
  /** A unique lowercase prefix for databases of this test. */
  prefix: string;
  cleanup(): Promise<void>;
}

const withDir = <T extends { path: string }>(names: T): T => {
  mkdirSync(names.path, { recursive: true });
  return names;
};

export const uniquePrefix = () => `t${randomBytes(4).toString('hex')}`;

/** A temp repo whose pool.config.yaml holds `config` (JSON is YAML). */
export async function fixture(
  config: Record<string, unknown>,
  files?: Record<string, string>,
): Promise<Fixture> {
  const repo = await makeTempRepo(files ? { files } : {});
  await fs.writeFile(path.join(repo.dir, 'pool.config.yaml'), JSON.stringify(config, null, 2));
  const loaded = loadConfig({ repo: repo.dir });
  const events: Fixture['events'] = [];
  const warnings: string[] = [];
  return {
    repo,
    loaded,
    events,
    warnings,
    prefix: (config.postgres as { dbPrefix?: string } | undefined)?.dbPrefix ?? 'app',
    ctx: (n) => ({
      config: loaded.config,
      repo: loaded.repo,
      // The pool creates the slot's worktree; tests without git work need only its directory.
      names: withDir(slotNames(loaded.config, loaded.repo, n)),
      event: async (type, details) => void events.push({ type, details }),
      progress: () => {},
      warn: (m) => void warnings.push(m),
    }),
    cleanup: () => repo.cleanup(),
  };
}

/** Runs test/worker.mjs with args; resolves with its exit code, stdout and stderr. */
export function runWorker(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}
