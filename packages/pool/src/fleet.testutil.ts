/**
 * A simulated fleet for the slow tests: one origin repository and N clones of it, each a
 * "host" with its own `fleet.host` id, its own state dir and its own CLI processes, all
 * sharing one Redis (lease store and band) and one PostgreSQL.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  makeTempRepo,
  runCli,
  type CliResult,
  type RunOptions,
  type TempRepo,
} from '@wtpool/testkit';

export const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/pool.js');

export interface Host {
  id: string;
  dir: string;
  pool(args: string[], opts?: RunOptions): Promise<CliResult>;
}

export interface Fleet {
  origin: TempRepo;
  hosts: Host[];
  dbPrefix: string;
  cleanup(): Promise<void>;
}

export interface FleetOptions {
  hosts: number;
  storeUrl: string;
  redisUrl?: string;
  pgUrl?: string;
  /** Extra YAML appended to every host's config. */
  yaml?: string;
  hostTtl?: string;
  /** scale: YAML block (default min 2, max 3, step 1). */
  scale?: string;
  /** More keys of the postgres block (YAML lines, indented two spaces). */
  postgres?: string;
  /** More keys of the store block (YAML lines, indented two spaces). */
  store?: string;
}

export async function makeFleet(o: FleetOptions): Promise<Fleet> {
  // A unique first commit: the fleet's key prefix is the root commit.
  const origin = await makeTempRepo({
    files: { 'README.md': `# fleet ${randomBytes(8).toString('hex')}\n` },
  });
  const dbPrefix = `fl${randomBytes(3).toString('hex')}`;
  const hosts: Host[] = [];
  for (let i = 1; i <= o.hosts; i++) {
    const id = `host-${i}`;
    const dir = path.join(origin.sandbox, id);
    await origin.git(['clone', '-q', origin.dir, dir], origin.sandbox);
    await origin.git(['checkout', '-q', '-B', 'main', 'origin/main'], dir);
    const yaml = [
      `scale:\n${o.scale ?? '  min: 2\n  max: 3\n  step: 1'}`,
      'deps:\n  strategy: none',
      `store:\n  backend: redis\n  url: ${o.storeUrl}\n  hostTtl: ${o.hostTtl ?? '3s'}${o.store ? `\n${o.store}` : ''}`,
      `fleet:\n  host: ${id}`,
      o.redisUrl ? `redis:\n  url: ${o.redisUrl}\n  bandStart: 1\n  floor: 4\n  step: 4` : '',
      o.pgUrl
        ? `postgres:\n  url: ${o.pgUrl}\n  dbPrefix: ${dbPrefix}${o.postgres ? `\n${o.postgres}` : ''}`
        : '',
      o.yaml ?? '',
    ]
      .filter(Boolean)
      .join('\n');
    await fs.writeFile(path.join(dir, 'pool.config.yaml'), yaml + '\n');
    hosts.push({
      id,
      dir,
      pool: (args, opts = {}) => {
        const dd = args.indexOf('--');
        const at = dd === -1 ? args.length : dd;
        return runCli(BIN, [...args.slice(0, at), '--repo', dir, ...args.slice(at)], {
          cwd: dir,
          ...opts,
        });
      },
    });
  }
  return { origin, hosts, dbPrefix, cleanup: () => origin.cleanup() };
}

export { until } from '@wtpool/testkit';
