/**
 * Fleet identity (store.backend redis, docs/fleet.md): the Redis key prefix shared by every
 * host of one repository, and this host's part of it. The repository is named by its root
 * commit (the same in every clone of one origin), cached in the state dir after the first look.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { configError, runSync } from '@wtpool/core';
import type { Config } from './schema.js';
import type { RepoPaths } from './repo.js';
import { fleetHost } from './naming.js';

const REPO_ID = /^[0-9a-f]{12}$/;

/** The repository's fleet id: the first 12 hex of its (smallest) root commit. */
export function fleetRepoId(repo: RepoPaths): string {
  const cache = path.join(repo.stateDir, 'fleet-repo-id');
  try {
    const id = readFileSync(cache, 'utf8').trim();
    if (REPO_ID.test(id)) return id;
  } catch {
    // first look
  }
  const r = runSync('git', ['rev-list', '--max-parents=0', 'HEAD'], { cwd: repo.mainRoot });
  const roots = r.stdout
    .split('\n')
    .filter((l) => /^[0-9a-f]{40}$/.test(l))
    .sort();
  if (r.code !== 0 || !roots.length) {
    throw configError(
      `store.backend redis needs a commit to name the repository in the fleet (${repo.mainRoot} has none)`,
      { hint: 'commit something first (every host must be a clone of the same origin)' },
    );
  }
  const id = roots[0]!.slice(0, 12);
  try {
    mkdirSync(repo.stateDir, { recursive: true, mode: 0o700 });
    writeFileSync(cache, id + '\n');
  } catch {
    // read-only state dir: look again next time
  }
  return id;
}

export interface FleetKeys {
  /** `wtpool:<repo>`: keys every host shares (token counter, hosts, band). */
  fleet: string;
  /** `wtpool:<repo>:h:<host>`: this host's registry and lease records. */
  host: string;
  hostId: string;
}

/** The key prefixes of this host in the fleet. */
export function fleetKeys(config: Config, repo: RepoPaths, host = fleetHost(config)): FleetKeys {
  const fleet = `wtpool:${fleetRepoId(repo)}`;
  return { fleet, host: `${fleet}:h:${host}`, hostId: host };
}
