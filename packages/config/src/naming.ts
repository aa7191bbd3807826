/**
 * THE naming function. Everything derived from a slot (id, worktree path, branch names,
 * database name, beads prefix, port block, Redis URL) comes from here and nowhere else, so no
 * two places can disagree. Every name from a user (agent, task, identity) is checked or
 * slugged here before it can reach a shell, a path, a branch or SQL.
 */
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { usageError, configError } from '@wtpool/core';
import type { Config } from './schema.js';
import type { RepoPaths } from './repo.js';

export const SLOT_ID = /^wt-([1-9][0-9]{0,3})$/;

export function slotId(n: number): string {
  if (!Number.isInteger(n) || n < 1 || n > 9999) throw usageError(`invalid slot number ${n}`);
  return `wt-${n}`;
}

/** Parses `wt-4` (also accepts `4`) into 4; a clear usage error otherwise. */
export function slotNumber(id: string): number {
  const m = SLOT_ID.exec(id) ?? /^([1-9][0-9]{0,3})$/.exec(id);
  if (!m)
    throw usageError(`invalid slot id ${JSON.stringify(id)}`, {
      hint: 'slot ids look like wt-1, wt-2, …',
    });
  return Number(m[1]);
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$/;

/**
 * Agents and identities are identifiers, not prose: letters, digits and . _ @ + -, at most 64,
 * not starting with punctuation. Anything else is refused (exit 2), never slugged, so two
 * different agents can never collapse into one name.
 */
export function checkName(value: string | undefined, what: 'agent' | 'identity'): string {
  if (value === undefined || value === '') throw usageError(`${what} name is empty`);
  if (!NAME.test(value) || value.includes('..')) {
    throw usageError(
      `invalid ${what} name ${JSON.stringify(value.length > 80 ? value.slice(0, 80) + '…' : value)}`,
      {
        hint: `${what} names use letters, digits and . _ @ + - (at most 64, no "..")`,
      },
    );
  }
  return value;
}

const TASK_SLUG_MAX = 48;

/**
 * A task is free text (an issue id, a title…). It is stored as given (after checks) and slugged
 * for branch names: lowercase ASCII letters, digits and single dashes, at most 48.
 */
export function checkTask(value: string | undefined): { task: string; slug: string } {
  if (value === undefined || value.trim() === '') throw usageError('task is empty');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    throw usageError('task contains control characters (newlines, tabs…)', {
      hint: 'pass a single-line task name',
    });
  }
  if (value.length > 200) throw usageError(`task is ${value.length} characters long; at most 200`);
  const slug = value
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, TASK_SLUG_MAX)
    .replace(/-+$/g, '');
  if (!slug)
    throw usageError(
      `task ${JSON.stringify(value)} has no letters or digits to name a branch with`,
    );
  return { task: value, slug };
}

/** Directory holding the slot worktrees. */
export function poolRoot(config: Config, repo: RepoPaths): string {
  if (config.pool.root) return path.resolve(repo.mainRoot, config.pool.root);
  return path.join(path.dirname(repo.mainRoot), `${path.basename(repo.mainRoot)}.worktrees`);
}

/**
 * The dedicated worktree where `integrate run` merges candidates into the integration branch:
 * `<pool root>/integration`, beside the slot worktrees (`wt-<n>` never collides with it).
 */
export function integrationWorktree(config: Config, repo: RepoPaths): string {
  return path.join(poolRoot(config, repo), 'integration');
}

export interface SlotNames {
  id: string;
  n: number;
  /** Absolute worktree path. */
  path: string;
  /** Prefix of every lease branch of this slot: `pool/wt-3/`. */
  branchPrefix: string;
  /** Branch of a lease for a task slug. */
  branch(taskSlug: string): string;
  /** PostgreSQL database of the slot, validated (≤ 63 bytes, [a-z0-9_]). */
  database: string;
  /** Beads prefix `<prefix>-wt-<n>`, when a beads prefix is known. */
  beadsPrefix: string | null;
  /** Port block, when ports are enabled. */
  ports: { start: number; end: number } | null;
  /** Lease file of the slot in the state dir. */
  leaseFile: string;
  /** Rescue ref namespace of the slot. */
  rescueRefPrefix: string;
  /** COMPOSE_PROJECT_NAME of the slot: `<repository>-wt-<n>`, a valid compose project name. */
  composeProject: string;
}

/**
 * A docker compose project name (lowercase letters, digits, - and _, starting with a letter or
 * digit): the main checkout's directory name slugged, then the slot id, so two slots' stacks
 * (and another repository's) never share containers, networks or volumes.
 */
export function composeProjectName(repo: RepoPaths, sid: string): string {
  const base = path
    .basename(repo.mainRoot)
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 40)
    .replace(/[-_]+$/, '');
  return `${base || 'wtpool'}-${sid}`;
}

const DB_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Validates a PostgreSQL identifier we created: ≤ 63 bytes (longer are silently truncated), [a-z0-9_]. */
export function checkDatabaseName(name: string): string {
  if (!DB_NAME.test(name) || Buffer.byteLength(name) > 63) {
    throw configError(
      `database name ${JSON.stringify(name)} is not a safe PostgreSQL identifier (≤ 63 bytes of [a-z0-9_])`,
      {
        hint: 'shorten postgres.dbPrefix',
      },
    );
  }
  return name;
}

const FLEET_HOST = /^[a-z0-9][a-z0-9-]{0,31}$/;

/**
 * This machine's id in the fleet: `fleet.host`, else the hostname's first label lowercased.
 * ≤ 32 of [a-z0-9-]; a hostname that does not fit is refused (exit 3) naming `fleet.host`.
 */
export function fleetHost(config: Config, hostname: string = os.hostname()): string {
  const host = config.fleet.host ?? hostname.split('.')[0]!.toLowerCase();
  if (!FLEET_HOST.test(host)) {
    throw configError(
      `fleet.host: the hostname ${JSON.stringify(host)} is not a fleet host id (at most 32 of [a-z0-9-], starting with a letter or digit)`,
      { hint: 'set fleet.host in pool.config.yaml (or WTPOOL_FLEET_HOST)' },
    );
  }
  return host;
}

/**
 * The host part of a database name (backend redis only, where databases are fleet-unique):
 * `-` becomes `_` (host ids have no `_`, so this stays one-to-one); when `<prefix>_<host>_<tail>`
 * would pass 63 bytes the host part is cut and suffixed with 6 hex of its hash.
 */
function dbHostPart(config: Config, tail: string): string | null {
  if (config.store.backend !== 'redis') return null;
  const host = fleetHost(config);
  const part = host.replace(/-/g, '_');
  const room = 63 - config.postgres.dbPrefix.length - tail.length - 2;
  if (part.length <= room) return part;
  const hash = createHash('sha256').update(host).digest('hex').slice(0, 6);
  return `${part.slice(0, Math.max(1, room - 7))}_${hash}`;
}

/** `<dbPrefix>_<tail>`, or `<dbPrefix>_<host>_<tail>` when the pool is a fleet (store.backend redis). */
function databaseName(config: Config, tail: string): string {
  const host = dbHostPart(config, tail);
  return checkDatabaseName(
    host === null
      ? `${config.postgres.dbPrefix}_${tail}`
      : `${config.postgres.dbPrefix}_${host}_${tail}`,
  );
}

export function slotNames(
  config: Config,
  repo: RepoPaths,
  id: string | number,
  beadsPrefix: string | null = config.beads.prefix,
): SlotNames {
  const n = typeof id === 'number' ? id : slotNumber(id);
  const sid = slotId(n);
  const branchPrefix = `${config.pool.branchPrefix}/${sid}/`;
  const ports =
    config.ports.base === null
      ? null
      : {
          start: config.ports.base + n * config.ports.stride,
          end: config.ports.base + (n + 1) * config.ports.stride - 1,
        };
  if (ports && ports.end > 65535) {
    throw configError(`slot ${sid}'s port block ${ports.start}-${ports.end} passes 65535`, {
      hint: 'lower ports.base or ports.stride, or scale.max',
    });
  }
  return {
    id: sid,
    n,
    path: path.join(poolRoot(config, repo), sid),
    branchPrefix,
    branch: (slug: string) => `${branchPrefix}${slug}`,
    database: databaseName(config, `wt${n}`),
    beadsPrefix: beadsPrefix ? `${beadsPrefix}-${sid}` : null,
    ports,
    leaseFile: path.join(repo.stateDir, 'leases', `${sid}.json`),
    rescueRefPrefix: `refs/wtpool/rescue/${sid}/`,
    composeProject: composeProjectName(repo, sid),
  };
}

/**
 * Rescue ref namespace for work found outside any slot (an orphan worktree under the pool
 * root): `refs/wtpool/rescue/orphan-<dir>/`, the directory name reduced to [a-z0-9._-].
 */
export function orphanRescueRefPrefix(dirName: string): string {
  const safe = dirName
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[.-]+|[.-]+$/g, '')
    .replace(/\.{2,}/g, '.')
    .slice(0, 64);
  return `refs/wtpool/rescue/orphan-${safe || 'worktree'}/`;
}

/** Template database name for a migrations hash. */
export function templateDatabase(config: Config, hash: string): string {
  return databaseName(config, `tpl_${hash.slice(0, 12).toLowerCase()}`);
}

/**
 * A URL with a different path (database) — used for DATABASE_URL and REDIS_URL. For a Sentinel
 * URL (`redis+sentinel://h1,h2/<master>[/db]`, which WHATWG URL cannot parse) the db after the
 * master name is replaced.
 */
export function urlWithPath(base: string, pathname: string): string {
  const sentinel = /^(rediss?\+sentinel:\/\/[^/?#]+\/[^/?#]+)(?:\/\d*)?\/?$/i.exec(base);
  if (sentinel) return `${sentinel[1]}/${pathname}`;
  const u = new URL(base);
  u.pathname = `/${pathname}`;
  return u.toString();
}
