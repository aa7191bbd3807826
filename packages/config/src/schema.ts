/**
 * The configuration schema: one declarative table giving every key, its type, its bounds, its
 * default and what it means. The `Config` type, validation and coercion (validate.ts), the
 * environment overrides, docs/config.md (docs.ts) and the flags that set a key (options.ts,
 * `keyOption`) all derive from it (D320). Adding a key is one entry here:
 *
 *   leaseTtl: { type: 'duration', default: '2h', min: '10s', max: '7d', description: '…' },
 *
 * Leaf fields: `type` (see LeafType), `default` (null only with `nullable: true`), `description`
 * (docs and --help), and optionally `nullable`, `env` (an environment variable overriding it),
 * `min`/`max` (int, number; duration as text like '10s'), `values` (enum), `pattern` +
 * `patternHint` (string), `check` (a further check of a value, or of each list entry: returns
 * what it must be, or undefined). Rules between keys are in RULES below.
 */
import {
  branchNameProblem,
  listPathProblem,
  redisUrlProblem,
  relativePathProblem,
  urlProblem,
} from './checks.js';
import type { PathGates } from './path-gates.js';
import type { DurationBound } from '@wtpool/core';

export type LeafType =
  'string' | 'int' | 'number' | 'boolean' | 'duration' | 'string[]' | 'enum' | 'path-gates';

export interface Leaf {
  type: LeafType;
  default: unknown;
  description: string;
  nullable?: boolean;
  values?: readonly string[];
  min?: DurationBound;
  max?: DurationBound;
  /** Environment variable that overrides this key. */
  env?: string;
  pattern?: RegExp;
  patternHint?: string;
  /** A further check of a valid value (of each entry of a list): what it must be, or undefined. */
  check?: (value: never) => string | undefined;
}

export type Schema = { readonly [key: string]: Leaf | Schema };

export const isLeaf = (x: Leaf | Schema): x is Leaf =>
  typeof (x as Leaf).type === 'string' && 'description' in x;

/** Keeps every literal of the table (`type: 'enum'`, `values`, `nullable: true`) for `Config`. */
const defineSchema = <const S extends Schema>(s: S): S => s;

type ValueOf<L> = L extends { type: 'boolean' }
  ? boolean
  : L extends { type: 'string' }
    ? string
    : L extends { type: 'int' | 'number' | 'duration' }
      ? number
      : L extends { type: 'string[]' }
        ? string[]
        : L extends { type: 'enum'; values: readonly (infer V)[] }
          ? V
          : L extends { type: 'path-gates' }
            ? PathGates
            : never;

/** The validated value of a schema (durations in milliseconds). */
export type ConfigOf<S> = {
  -readonly [K in keyof S]: S[K] extends { type: LeafType; description: string }
    ? S[K] extends { nullable: true }
      ? ValueOf<S[K]> | null
      : ValueOf<S[K]>
    : ConfigOf<S[K]>;
};

// Redis logical databases the pool will address at most (Redis allows more, but each costs
// memory and an index this large is a typo).
/**
 * beads' types that are not work to hand out: its ready query excludes merge-request, gate,
 * molecule, message, agent, role and rig; its infrastructure types are agent, rig, role and
 * message; event is its audit-trail type, milestone "no work itself"; convoy and slot are
 * Gas Town orchestration types, wisp the ephemeral kind.
 */
export const NON_WORK_TYPES: readonly string[] = [
  'agent',
  'role',
  'rig',
  'convoy',
  'slot',
  'merge-request',
  'molecule',
  'wisp',
  'gate',
  'message',
  'event',
  'milestone',
];

const REDIS_DB_MAX = 10_000;

const THRESHOLD = (def: number, env: string, description: string, max?: number) =>
  ({
    type: 'number',
    default: def,
    min: 0,
    ...(max === undefined ? {} : { max }),
    env,
    description,
  }) as const;

// A gate command is not empty. The build gate is mandatory, so it may not be an obvious no-op
// either (`true`, `:`, `exit 0`): a config file cannot quietly switch it off. The format and test
// gates may say `true` explicitly (a repository with no formatter or tests), D93.
const NON_EMPTY = /\S/;
const NO_OP = /^\s*(?:true|:|exit(?:\s+0)?|\/bin\/true|\/usr\/bin\/true)\s*$/;
const buildCommand = (v: string) =>
  NO_OP.test(v) ? `a command that builds, not the no-op ${JSON.stringify(v.trim())}` : undefined;

export const SCHEMA = defineSchema({
  pool: {
    enabled: {
      type: 'boolean',
      default: true,
      env: 'WORKTREE_POOL_ENABLED',
      description:
        'master switch; when false, commands that lease slots refuse with a clear message',
    },
    root: {
      type: 'string',
      default: null,
      nullable: true,
      env: 'WORKTREE_BASE_PATH',
      description:
        'directory holding the slot worktrees (default: <repo>.worktrees beside the main checkout); relative to the repository root',
    },
    base: {
      type: 'string',
      default: 'main',
      description: 'branch every lease starts from and every release returns to',
      pattern: /^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/,
      patternHint: 'a branch name',
      check: branchNameProblem,
    },
    branchPrefix: {
      type: 'string',
      default: 'pool',
      description: 'lease branches are <branchPrefix>/<slot>/<task-slug>',
      pattern: /^[a-z0-9][a-z0-9_-]{0,31}$/,
      patternHint: 'lowercase letters, digits, - and _, at most 32',
    },
    keep: {
      type: 'string[]',
      default: ['node_modules'],
      description:
        'ignored caches that survive a release (paths relative to the worktree, no glob characters); a relative core.hooksPath (husky: .husky/_, copied into each slot) is always kept too',
      check: listPathProblem,
    },
    disposable: {
      type: 'string[]',
      default: [
        'dist',
        '.turbo',
        'coverage',
        '.next',
        '.nuxt',
        '.parcel-cache',
        '__pycache__',
        '.pytest_cache',
      ],
      description:
        'ignored build outputs a release may delete unsaved (a name matches at any depth, a path from the root; no glob characters); other ignored files are saved to the rescue ref',
      check: listPathProblem,
    },
    rescueMaxBytes: {
      type: 'int',
      default: 50 * 1024 * 1024,
      min: 0,
      max: 10 * 1024 * 1024 * 1024,
      description:
        'ignored files saved into one rescue commit, in bytes; what does not fit stays on disk and is listed',
    },
    leaseTtl: {
      type: 'duration',
      default: '2h',
      min: '10s',
      max: '7d',
      description: 'a lease expires when not renewed for this long; `--ttl` takes the same bounds',
    },
    waitTimeout: {
      type: 'duration',
      default: '30m',
      min: 0,
      description:
        'default --timeout of a blocking acquire (0: do not wait); `--timeout` takes the same bounds',
    },
    cleanupOnStartup: {
      type: 'boolean',
      default: false,
      env: 'WORKTREE_CLEANUP_ON_STARTUP',
      description: '`pool init` first prunes drift (expired leases, missing worktrees)',
    },
    // Slot setup (issue 24): files from the main checkout and the repository's own setup.
    include: {
      type: 'string[]',
      default: [],
      description:
        "ignored files of the main checkout copied into every slot (gitignore-style globs, like the repository's `.worktreeinclude`, which is read too); only files git ignores, never under .git, never through a symlink out of the repository",
      check: relativePathProblem,
    },
    includeMode: {
      type: 'enum',
      default: 'copy',
      values: ['copy', 'symlink'],
      description:
        'how included files reach a slot: a copy keeping the mode (re-copied when the source changes), or a symlink to the main checkout',
    },
    setup: {
      type: 'string[]',
      default: [],
      description:
        "the repository's own setup commands (codegen, `npx prisma generate`, …), run in order in the slot by `sh -c` after its dependencies, with the slot's env; run again only when pool.setupInputs change",
      check: (c: string) => (/\S/.test(c) ? undefined : 'a non-empty command'),
    },
    setupInputs: {
      type: 'string[]',
      default: null,
      nullable: true,
      description:
        'globs of tracked files whose content decides when pool.setup runs again (default: the lockfiles; the setup list itself always counts)',
      check: relativePathProblem,
    },
  },
  scale: {
    min: {
      type: 'int',
      default: 3,
      min: 0,
      max: 1000,
      env: 'WORKTREE_POOL_SIZE',
      description: 'ready slots kept at least (and the default size of `pool init`)',
    },
    max: {
      type: 'int',
      default: 10,
      min: 1,
      max: 1000,
      description: 'the pool never grows past this',
    },
    step: {
      type: 'int',
      default: 2,
      min: 1,
      max: 100,
      description: 'slots added per growth while waiters are queued',
    },
    idleShrinkAfter: {
      type: 'duration',
      default: '30m',
      description: 'ready slots above min idle for this long are retired',
    },
  },
  postgres: {
    url: {
      type: 'string',
      default: null,
      nullable: true,
      description:
        'admin connection URL (enables per-slot databases), e.g. postgres://user:pass@127.0.0.1:5432/postgres',
      check: urlProblem(['postgres:', 'postgresql:']),
    },
    migrate: {
      type: 'string',
      default: null,
      nullable: true,
      description: 'command that migrates the template; run with DATABASE_URL pointing at it',
    },
    migrations: {
      type: 'string',
      default: null,
      nullable: true,
      description:
        'glob of migration files whose contents name the template (rebuilt when they change)',
    },
    dbPrefix: {
      type: 'string',
      default: 'app',
      description: 'slot databases are <dbPrefix>_wt<n>',
      pattern: /^[a-z][a-z0-9_]{0,39}$/,
      patternHint: 'lowercase letters, digits and _, starting with a letter, at most 40',
    },
    connectionLimit: {
      type: 'int',
      default: 5,
      min: 1,
      max: 10000,
      description: 'CONNECTION LIMIT of each slot database',
    },
    connectionBudget: {
      type: 'int',
      default: null,
      nullable: true,
      min: 1,
      max: 1000000,
      description:
        "backend redis: the fleet's connections to the PostgreSQL server; a lease takes connectionLimit of it, and an acquire that would exceed it waits in the queue (default: the server's max_connections minus superuser_reserved_connections minus 5)",
    },
  },
  redis: {
    url: {
      type: 'string',
      default: null,
      nullable: true,
      description:
        'Redis URL (enables per-slot logical databases), e.g. redis://127.0.0.1:6379, or a Sentinel URL redis+sentinel://host1,host2/mymaster (docs/fleet.md)',
      check: redisUrlProblem,
    },
    bandStart: {
      type: 'int',
      default: 1,
      min: 1,
      max: REDIS_DB_MAX,
      description:
        'first DB index the pool may use; lower ones belong to the app (DB 0 always does)',
    },
    floor: {
      type: 'int',
      default: 20,
      min: 1,
      max: REDIS_DB_MAX,
      description: 'size the band idles at',
    },
    step: {
      type: 'int',
      default: 10,
      min: 1,
      max: REDIS_DB_MAX,
      description: 'the band grows and shrinks by this many DBs',
    },
    provisionTarget: {
      type: 'int',
      default: 64,
      min: 1,
      max: REDIS_DB_MAX,
      description: 'databases set by `pool scale --provision`',
    },
    confFile: {
      type: 'string',
      default: null,
      nullable: true,
      description: 'redis.conf rewritten by --provision',
    },
    restartCommand: {
      type: 'string',
      default: null,
      nullable: true,
      description: 'command that restarts Redis, run once by --provision',
    },
  },
  ports: {
    base: {
      type: 'int',
      default: null,
      nullable: true,
      min: 1,
      max: 65535,
      description: 'first port of slot 0 (enables port blocks)',
    },
    stride: {
      type: 'int',
      default: 10,
      min: 1,
      max: 1000,
      description: 'ports per slot; slot n owns base + n*stride …',
    },
    names: {
      type: 'string[]',
      default: [],
      description:
        "named ports of each block: [web, api] gives WEB_PORT (the block's first port, = PORT) and API_PORT (the next); at most ports.stride",
      check: (n: string) =>
        /^[a-z][a-z0-9_]{0,31}$/.test(n)
          ? undefined
          : `port names of lowercase letters, digits and _ (starting with a letter, at most 32), got ${JSON.stringify(n)}`,
    },
  },
  beads: {
    prefix: {
      type: 'string',
      default: null,
      nullable: true,
      description: 'issue prefix (default: read from .beads/config.yaml when present)',
      pattern: /^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$/,
      patternHint: 'letters, digits, - and _',
    },
  },
  deps: {
    strategy: {
      type: 'enum',
      default: 'auto',
      values: ['auto', 'hardlink', 'pnpm', 'npm', 'command', 'none'],
      description: 'how a slot gets its dependencies',
    },
    command: {
      type: 'string',
      default: null,
      nullable: true,
      description: 'install command for strategy `command` (required by it)',
      pattern: NON_EMPTY,
      patternHint: 'a non-empty command',
    },
  },
  gates: {
    format: {
      type: 'string',
      default: 'prettier --check --ignore-unknown',
      description:
        'format check; pre-commit runs it on the staged files (through lint-staged), ci on `.`',
      pattern: NON_EMPTY,
      patternHint: 'a non-empty command',
    },
    build: {
      type: 'string',
      default: 'tsc -b',
      description:
        'build command, a mandatory gate: it can be changed, never removed (keep it incremental so a one-file commit stays fast)',
      pattern: NON_EMPTY,
      patternHint: 'a non-empty command that builds (the build gate cannot be disabled)',
      check: buildCommand,
    },
    test: {
      type: 'string',
      default: 'pnpm -s test',
      description: 'test command (ci; pre-commit only with RUN_TESTS_ON_COMMIT=1)',
      pattern: NON_EMPTY,
      patternHint: 'a non-empty command',
    },
    setup: {
      type: 'string',
      default: null,
      nullable: true,
      description:
        'extra command run in the integration worktree after its dependencies are brought up to date (as slots get them, deps.strategy), before the gates',
    },
    paths: {
      type: 'path-gates',
      default: {},
      description:
        'per-path gates: path glob → { build, typecheck, test } commands for changes under it (a check left out uses the default; see docs/gates.md)',
    },
  },
  store: {
    backend: {
      type: 'enum',
      default: 'file',
      values: ['file', 'redis'],
      description:
        'where the lease store lives: `file` (state files under .git/wtpool, one machine) or `redis` (one pool over several machines, docs/fleet.md)',
    },
    url: {
      type: 'string',
      default: null,
      nullable: true,
      description:
        'Redis URL of the lease store (backend redis), e.g. redis://10.0.0.5:6379/0, or redis+sentinel://10.0.0.5,10.0.0.6/mymaster/0 (docs/fleet.md)',
      check: redisUrlProblem,
    },
    hostTtl: {
      type: 'duration',
      default: '2m',
      min: '2s',
      description:
        'backend redis: a host none of whose pool processes (commands, waiters, `monitor daemon`) reached Redis for this long is lost: its leases expire, its services are reclaimed',
    },
    replicas: {
      type: 'int',
      default: 0,
      min: 0,
      max: 16,
      description:
        'backend redis: Redis replicas that must acknowledge every lease write (WAIT) before it counts; a grant they do not acknowledge in replicaTimeout is refused with exit 6 (docs/fleet.md)',
    },
    replicaTimeout: {
      type: 'duration',
      default: '2s',
      min: '10ms',
      max: '1m',
      description:
        'backend redis: how long a lease write waits for store.replicas acknowledgements',
    },
  },
  fleet: {
    host: {
      type: 'string',
      default: null,
      nullable: true,
      env: 'WTPOOL_FLEET_HOST',
      description:
        "this machine's id in the fleet (default: the hostname's first label, lowercased); names its slots, databases and keys",
      pattern: /^[a-z0-9][a-z0-9-]{0,31}$/,
      patternHint: 'lowercase letters, digits and -, at most 32',
    },
  },
  monitor: {
    interval: {
      type: 'duration',
      default: '30s',
      min: '1s',
      description: 'daemon sampling interval',
    },
    leaseAlertAfter: {
      type: 'duration',
      default: '20m',
      min: 0,
      description: 'leases older than this are reported (0: every lease)',
    },
    thresholds: {
      DB_CONN_WARN: THRESHOLD(40, 'DB_CONN_WARN', 'PostgreSQL connections: warning level'),
      DB_CONN_ERROR: THRESHOLD(50, 'DB_CONN_ERROR', 'PostgreSQL connections: error level'),
      DISK_WARN: THRESHOLD(
        2_800_000_000,
        'DISK_WARN',
        "bytes used by the pool's worktrees: warning level",
      ),
      DISK_ERROR: THRESHOLD(
        3_000_000_000,
        'DISK_ERROR',
        "bytes used by the pool's worktrees: error level",
      ),
      FD_WARN_PCT: THRESHOLD(
        80,
        'FD_WARN_PCT',
        'file descriptors in use, percent of the limit: warning level',
        100,
      ),
    },
  },
  tracks: {
    nonWorkTypes: {
      type: 'string[]',
      default: [...NON_WORK_TYPES],
      description: 'issue types `tracks` never assigns (listed as "not work"; see docs/tracks.md)',
    },
  },
});

/** The validated configuration, durations in milliseconds: derived from SCHEMA, never copied. */
export type Config = ConfigOf<typeof SCHEMA>;

/**
 * Rules between keys, checked after every key is valid: `key` is the one named in the message
 * (exit 3), `problem` what it must be (a phrase starting "must be"), or undefined.
 */
export const RULES: ReadonlyArray<{
  key: string;
  /** The rule, for docs/config.md. */
  says: string;
  problem: (c: Config) => string | undefined;
}> = [
  {
    key: 'scale.min',
    says: '`scale.min` ≤ `scale.max`',
    problem: (c) =>
      c.scale.min > c.scale.max
        ? `must be at most scale.max (${c.scale.max}), got ${c.scale.min}`
        : undefined,
  },
  {
    key: 'store.url',
    says: '`store.url` is set when `store.backend` is `redis`',
    problem: (c) =>
      c.store.backend === 'redis' && !c.store.url
        ? "must be set when store.backend is redis (the fleet's Redis, e.g. redis://10.0.0.5:6379/0)"
        : undefined,
  },
  {
    key: 'deps.command',
    says: '`deps.command` is set when `deps.strategy` is `command`',
    problem: (c) =>
      c.deps.strategy === 'command' && !c.deps.command?.trim()
        ? 'must be set when deps.strategy is command (the install command to run in each slot)'
        : undefined,
  },
  {
    key: 'ports.names',
    says: '`ports.names` has at most `ports.stride` names, none twice',
    problem: (c) => {
      const names = c.ports.names;
      if (names.length > c.ports.stride)
        return `must name at most ports.stride (${c.ports.stride}) ports, got ${names.length} names`;
      const dup = names.find((n, i) => names.indexOf(n) !== i);
      return dup ? `must not list ${JSON.stringify(dup)} twice` : undefined;
    },
  },
  {
    key: 'monitor.thresholds.DB_CONN_WARN',
    says: '`DB_CONN_WARN` ≤ `DB_CONN_ERROR`',
    problem: (c) =>
      c.monitor.thresholds.DB_CONN_WARN > c.monitor.thresholds.DB_CONN_ERROR
        ? `must be at most DB_CONN_ERROR (${c.monitor.thresholds.DB_CONN_ERROR})`
        : undefined,
  },
  {
    key: 'monitor.thresholds.DISK_WARN',
    says: '`DISK_WARN` ≤ `DISK_ERROR`',
    problem: (c) =>
      c.monitor.thresholds.DISK_WARN > c.monitor.thresholds.DISK_ERROR
        ? `must be at most DISK_ERROR (${c.monitor.thresholds.DISK_ERROR})`
        : undefined,
  },
];
