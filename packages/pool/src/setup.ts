/**
 * `pool setup`: first contact with an adopting repository (docs/adopt.md, D185). It looks at
 * what the repository already has (package manager and its `packageManager` pin, lockfile,
 * formatter, build script, PostgreSQL/Redis URLs in .env files), writes a commented
 * pool.config.yaml from it, adds the root scripts, installs the gates (`gates install`, which
 * detects the hook manager) and says what it did and what to run next. Idempotent: an existing
 * pool.config.yaml or script is kept unless --force.
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gitRun, redact, run } from '@wtpool/core';
import { resolveRepo, targetDir } from '@wtpool/config';
import { writeFileAtomic } from '@wtpool/lock';

export interface SetupOptions {
  repo?: string | undefined;
  force?: boolean;
}

export interface Detected {
  packageManager: 'pnpm' | 'npm' | 'yarn' | null;
  /** The package.json `packageManager` field, e.g. pnpm@10.34.5. */
  packageManagerPin: string | null;
  lockfile: string | null;
  formatter: 'prettier' | 'biome' | null;
  /** The root package.json build script, when there is one. */
  buildScript: string | null;
  postgresUrl: { file: string; key: string; url: string } | null;
  redisUrl: { file: string; key: string; url: string } | null;
  /** Slot setup (issue 24): a prisma schema (setup suggests `npx prisma generate`). */
  prismaSchema?: string | null;
  /** A docker compose file (each slot gets its own COMPOSE_PROJECT_NAME). */
  composeFile?: string | null;
  /** The .env files present (pool.include candidates), and whether `.worktreeinclude` exists. */
  envFiles?: string[];
  worktreeInclude?: boolean;
  /** The branch the main checkout is on (pool.base when it is not the default, main). */
  branch?: string | null;
}

export interface SetupResult {
  root: string;
  detected: Detected;
  config: { file: string; action: 'written' | 'kept' | 'overwritten' };
  scripts: { added: string[]; kept: string[] };
  gates: {
    ok: boolean;
    manager: string | null;
    mode: string | null;
    notes: string[];
    error?: string;
  };
  next: string[];
}

const LOCKFILES: [string, Detected['packageManager']][] = [
  ['pnpm-lock.yaml', 'pnpm'],
  ['package-lock.json', 'npm'],
  ['npm-shrinkwrap.json', 'npm'],
  ['yarn.lock', 'yarn'],
];
const PRISMA_SCHEMAS = ['prisma/schema.prisma', 'schema.prisma', 'prisma/schema'];
const COMPOSE_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yml', 'docker-compose.yaml'];
const ENV_FILES = ['.env', '.env.local', '.env.development', '.env.development.local', '.env.test'];
const PG_KEYS = /^(DATABASE_URL|POSTGRES_URL|POSTGRESQL_URL|PG_URL)$/;
const REDIS_KEYS = /^(REDIS_URL|REDIS_URI|KV_URL)$/;
const SCRIPTS: Record<string, string> = {
  pool: 'pool',
  gates: 'gates',
  monitor: 'monitor',
  tracks: 'tracks',
  integrate: 'integrate',
};

type Pkg = {
  packageManager?: string;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
};

async function readJson(file: string): Promise<Pkg | null> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as Pkg;
  } catch {
    return null;
  }
}

/** KEY=value lines of the repository's .env files (the first file naming a key wins). */
async function envUrls(root: string, keys: RegExp) {
  for (const file of ENV_FILES) {
    const text = await fs.readFile(path.join(root, file), 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      const m = /^\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)\s*=\s*(.*)$/.exec(line);
      if (!m || !keys.test(m[1]!)) continue;
      const url = m[2]!.trim().replace(/^(['"])(.*)\1$/, '$2');
      if (/^(postgres(ql)?|rediss?):\/\//.test(url)) return { file, key: m[1]!, url };
    }
  }
  return null;
}

export async function detect(root: string): Promise<Detected> {
  const pkg = (await readJson(path.join(root, 'package.json'))) ?? {};
  const pin = typeof pkg.packageManager === 'string' ? pkg.packageManager : null;
  const lock = LOCKFILES.find(([f]) => existsSync(path.join(root, f)));
  const fromPin = pin ? (/^(pnpm|npm|yarn)@/.exec(pin)?.[1] as Detected['packageManager']) : null;
  const deps = { ...pkg.dependencies, ...pkg.devDependencies };
  const has = (f: string) => existsSync(path.join(root, f));
  const formatter =
    'prettier' in deps || ['.prettierrc', '.prettierrc.json', 'prettier.config.js'].some(has)
      ? 'prettier'
      : '@biomejs/biome' in deps || has('biome.json')
        ? 'biome'
        : null;
  const prismaField = (pkg as { prisma?: { schema?: unknown } }).prisma?.schema;
  return {
    packageManager: fromPin ?? lock?.[1] ?? (has('package.json') ? 'npm' : null),
    prismaSchema:
      typeof prismaField === 'string' && has(prismaField)
        ? prismaField
        : (PRISMA_SCHEMAS.find(has) ?? null),
    composeFile: COMPOSE_FILES.find(has) ?? null,
    envFiles: ENV_FILES.filter(has),
    worktreeInclude: has('.worktreeinclude'),
    packageManagerPin: pin,
    lockfile: lock?.[0] ?? null,
    formatter,
    buildScript: pkg.scripts?.build ?? null,
    postgresUrl: await envUrls(root, PG_KEYS),
    redisUrl: await envUrls(root, REDIS_KEYS),
    branch: await currentBranch(root),
  };
}

async function currentBranch(root: string): Promise<string | null> {
  const r = await gitRun(['symbolic-ref', '-q', '--short', 'HEAD'], { cwd: root });
  return r.code === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

/** The admin URL of a PostgreSQL server: the same server, its `postgres` database. */
const adminUrl = (url: string) => url.replace(/\/[^/?]*(\?|$)/, '/postgres$1');
const hasPassword = (url: string) => /:\/\/[^/@:]*:[^/@]+@/.test(url);

export function configText(d: Detected): string {
  const run = d.packageManager === 'npm' ? 'npm run -s' : `${d.packageManager ?? 'npm'} -s`;
  const lines = [
    '# worktree-pool configuration, written by `pool setup` (all keys: the package docs, config.md).',
    '# What setup found in this repository:',
    `#   package manager: ${d.packageManager ?? 'none'}${d.packageManagerPin ? ` (pinned: packageManager ${d.packageManagerPin})` : ''}`,
    `#   lockfile:        ${d.lockfile ?? 'none'}`,
    `#   formatter:       ${d.formatter ?? 'none found'}`,
    `#   build script:    ${d.buildScript ?? 'none (package.json has no "build")'}`,
    '',
    'scale:',
    '  min: 3 # ready slots `pool init` creates',
    '  max: 10',
    '',
    'deps:',
    '  # auto: hard-link clone of node_modules when the lockfile matches the main checkout; with no',
    '  # node_modules there, one install (in the first slot) is cloned into the others.',
    '  strategy: auto',
    '',
    'gates:',
  ];
  // A format command only for a formatter setup found (D330): without one, the default
  // (prettier) is skipped with a note while prettier is not installed.
  if (d.formatter === 'biome') lines.push('  format: npx --no-install biome format');
  else if (d.formatter === 'prettier') lines.push('  format: prettier --check --ignore-unknown');
  else
    lines.push(
      '  # no formatter found: the format gate says so and passes; it checks with prettier once',
      "  # prettier is installed, or set `format:` to your formatter's check command",
    );
  lines.push(
    d.buildScript
      ? `  build: ${run} build # the mandatory build gate (keep it incremental)`
      : '  build: tsc -b # the mandatory build gate: set the command that builds this repository',
  );
  lines.push(`  test: ${run} test`);
  lines.push(...slotSetupText(d, run));
  for (const [name, found] of [
    ['postgres', d.postgresUrl],
    ['redis', d.redisUrl],
  ] as const) {
    if (!found) continue;
    lines.push('', `${name}:`);
    const url = name === 'postgres' ? adminUrl(found.url) : found.url;
    if (hasPassword(url)) {
      // A password never goes into a file that is committed: the user puts it back by hand.
      lines.push(
        `  # found ${found.key} in ${found.file}; it holds a password, so setup did not copy it here:`,
        `  # url: ${redact(url)}`,
      );
    } else {
      lines.push(`  url: ${url} # from ${found.key} in ${found.file}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** The commented slot-setup keys (issue 24), filled in with what was found. */
function slotSetupText(d: Detected, run: string): string[] {
  const env = d.envFiles ?? [];
  const inputs = [d.lockfile, d.prismaSchema].filter((x): x is string => !!x);
  return [
    '',
    '# Uncomment a section header with its keys (a header with nothing under it is refused).',
    ...(d.branch && d.branch !== 'main'
      ? [
          'pool:',
          `  base: ${JSON.stringify(d.branch)} # the branch the main checkout is on: leases start from it`,
        ]
      : ['# pool:']),
    '  # Ignored files of the main checkout every slot gets a copy of (mode kept; gitignore globs).',
    `  # A .worktreeinclude file at the root is read too${d.worktreeInclude ? ' (this repository has one)' : ''}.`,
    `  # include: [${env.length ? env.join(', ') : '.env'}]${env.length ? ' # found in the main checkout' : ''}`,
    '  # includeMode: copy # or symlink (to the main checkout)',
    "  # The repository's own setup, run in each slot after its dependencies, with the slot's env",
    '  # (PORT, DATABASE_URL, COMPOSE_PROJECT_NAME, …); run again only when setupInputs change.',
    '  # setup:',
    ...(d.prismaSchema
      ? [`  #   - npx prisma generate # prisma schema found: ${d.prismaSchema}`]
      : [`  #   - ${run} codegen`]),
    `  # setupInputs: [${inputs.length ? inputs.join(', ') : 'pnpm-lock.yaml'}] # default: the lockfiles`,
    '',
    '# ports:',
    '  # A block of ports per slot: PORT, PORT_RANGE_START/END, and <NAME>_PORT for each name.',
    '  # base: 20000',
    '  # stride: 10',
    '  # names: [web, api]',
    ...(d.composeFile
      ? [
          `  # ${d.composeFile} found: every slot's .env.worktree sets its own COMPOSE_PROJECT_NAME,`,
          '  # so `docker compose` stacks of two slots never collide; publish the named ports there.',
        ]
      : []),
  ];
}

/** The gates bin of this installation: beside the code (one package) or the gates package. */
function gatesBin(): string | null {
  for (const rel of ['../bin/gates.js', '../../gates/bin/gates.js']) {
    const f = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(f)) return f;
  }
  return null;
}

async function runGates(root: string): Promise<SetupResult['gates']> {
  const bin = gatesBin();
  if (!bin)
    return { ok: false, manager: null, mode: null, notes: [], error: 'gates CLI not found' };
  const r = await run(process.execPath, [bin, 'install', '--json', '--repo', root]);
  let doc: {
    mode?: string;
    manager?: string;
    notes?: string[];
    error?: { message: string; hint?: string };
  } = {};
  try {
    doc = JSON.parse(r.stdout) as typeof doc;
  } catch {
    // reported below
  }
  return {
    ok: r.code === 0 && doc.mode !== 'guidance',
    manager: doc.manager ?? null,
    mode: doc.mode ?? null,
    notes: doc.notes ?? [],
    ...(doc.error
      ? { error: `${doc.error.message}${doc.error.hint ? ` (${doc.error.hint})` : ''}` }
      : r.code !== 0 && !doc.mode
        ? { error: `gates install exited ${r.code}` }
        : {}),
  };
}

export async function setup(opts: SetupOptions): Promise<SetupResult> {
  const repo = resolveRepo(targetDir(opts.repo));
  const root = repo.worktree;
  const detected = await detect(root);

  const configFile = path.join(root, 'pool.config.yaml');
  const present = existsSync(configFile);
  const action = present ? (opts.force ? 'overwritten' : 'kept') : 'written';
  if (action !== 'kept') await writeFileAtomic(configFile, configText(detected));

  const added: string[] = [];
  const kept: string[] = [];
  const pkgFile = path.join(root, 'package.json');
  const pkg = await readJson(pkgFile);
  if (pkg) {
    pkg.scripts ??= {};
    for (const [name, cmd] of Object.entries(SCRIPTS)) {
      if (pkg.scripts[name] !== undefined && (!opts.force || pkg.scripts[name] === cmd)) {
        kept.push(name);
        continue;
      }
      pkg.scripts[name] = cmd;
      added.push(name);
    }
    if (added.length) await writeFileAtomic(pkgFile, JSON.stringify(pkg, null, 2) + '\n');
  }

  const gates = await runGates(root);
  const pm = detected.packageManager ?? 'npm';
  const exec = pm === 'npm' ? 'npx' : `${pm} exec`;
  const next = [
    ...gates.notes,
    ...(gates.error ? [`fix the gates install: ${gates.error}`] : []),
    `${exec} pool init   # creates the ready slots (scale.min)`,
  ];
  return {
    root,
    detected,
    config: { file: configFile, action },
    scripts: { added, kept },
    gates,
    next,
  };
}

export function formatSetup(r: SetupResult): string {
  const d = r.detected;
  const found = (x: { file: string; key: string; url: string } | null) =>
    x ? `${x.key} in ${x.file} (${redact(x.url)})` : 'none';
  return [
    `pool setup in ${r.root}`,
    `  package manager  ${d.packageManager ?? 'none'}${d.packageManagerPin ? ` (packageManager: ${d.packageManagerPin})` : ''}, lockfile ${d.lockfile ?? 'none'}`,
    `  formatter        ${d.formatter ?? 'none found'}`,
    `  build script     ${d.buildScript ?? 'none'}`,
    `  PostgreSQL       ${found(d.postgresUrl)}`,
    `  Redis            ${found(d.redisUrl)}`,
    `  slot setup       ${
      [
        d.prismaSchema ? `prisma schema ${d.prismaSchema}` : null,
        d.composeFile ? `compose file ${d.composeFile}` : null,
        d.envFiles?.length ? `env files ${d.envFiles.join(', ')}` : null,
        d.worktreeInclude ? '.worktreeinclude' : null,
      ]
        .filter(Boolean)
        .join('; ') || 'nothing found'
    } (commented keys under pool: and ports:)`,
    `  hook manager     ${r.gates.manager ?? 'unknown'}`,
    `${r.config.action === 'kept' ? 'kept' : r.config.action === 'written' ? 'wrote' : 'overwrote'} ${r.config.file}${r.config.action === 'kept' ? ' (exists; --force rewrites it)' : ''}`,
    r.scripts.added.length
      ? `added scripts: ${r.scripts.added.join(', ')}`
      : 'scripts: all present',
    r.gates.ok
      ? `gates installed (${r.gates.mode})`
      : `gates NOT installed${r.gates.error ? `: ${r.gates.error}` : ''}`,
    'next:',
    ...r.next.map((n) => `  ${n}`),
  ].join('\n');
}
