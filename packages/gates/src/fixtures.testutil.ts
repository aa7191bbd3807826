/**
 * Test fixtures (not part of the build): a temp repository holding a tiny TypeScript project
 * whose gates use this workspace's prettier and tsc through PATH (no install per test).
 */
import path from 'node:path';
import { makeTempRepo, PROJECT_ROOT, runCli, type TempRepo } from '@wtpool/testkit';

export const GATES_BIN = path.join(PROJECT_ROOT, 'packages/gates/bin/gates.js');
export const INTEGRATE_BIN = path.join(PROJECT_ROOT, 'packages/gates/bin/integrate.js');
export const POOL_BIN = path.join(PROJECT_ROOT, 'packages/pool/bin/pool.js');

/** PATH with the workspace's node_modules/.bin first (prettier, tsc). */
export const ENV: NodeJS.ProcessEnv = {
  PATH: `${path.join(PROJECT_ROOT, 'node_modules/.bin')}${path.delimiter}${process.env.PATH}`,
  RUN_TESTS_ON_COMMIT: '',
  INIT_CWD: '',
};

export const TSCONFIG = `{
  "compilerOptions": {
    "strict": true,
    "module": "NodeNext",
    "target": "ES2022",
    "outDir": "dist",
    "rootDir": "src",
    "incremental": true,
    "tsBuildInfoFile": "dist/.tsbuildinfo"
  },
  "include": ["src"]
}
`;

export const PASSING_TEST = `import assert from "node:assert";
import { test } from "node:test";

test("adds", () => {
  assert.equal(1 + 1, 2);
});
`;

export const FAILING_TEST = PASSING_TEST.replace('"adds"', '"fails"').replace('2);', '3);');

/**
 * A repository with a tiny TypeScript project and its gates configured. No dependency install
 * (`deps.strategy: none`): the gates find prettier and tsc on PATH, and `auto` would run npm in
 * each slot and in the integration worktree, leaving a package-lock.json behind.
 */
export async function makeTsRepo(extraConfig = ''): Promise<TempRepo> {
  return makeTempRepo({
    files: {
      'package.json': '{\n  "name": "tiny",\n  "private": true,\n  "type": "module"\n}\n',
      'tsconfig.json': TSCONFIG,
      '.gitignore': 'dist/\nnode_modules/\n',
      'src/index.ts': 'export const one: number = 1;\n',
      'test/add.test.mjs': PASSING_TEST,
      'pool.config.yaml': `deps:\n  strategy: none\ngates:\n  build: tsc -b\n  test: node --test\n${extraConfig}`,
    },
  });
}

/**
 * The build gate of the quick fixture: a real command that fails, naming the file, when a
 * source file says BROKEN. In milliseconds, where tsc takes 2 s: for the tests whose subject is
 * the queue, the hooks or the formatter flow, not what the build checks (those keep tsc).
 */
export const QUICK_BUILD = `// The build gate of the quick fixture: fails, naming the file, when a source says BROKEN.
import { readFileSync, readdirSync } from "node:fs";

const bad = readdirSync("src", { recursive: true })
  .map(String)
  .filter((f) => f.endsWith(".ts"))
  .filter((f) => readFileSync(\`src/\${f}\`, "utf8").includes("BROKEN"));
if (bad.length) {
  console.error(\`build: src/\${bad.join(", src/")} is BROKEN\`);
  process.exit(1);
}
`;

/** What the quick build reports for a file that says BROKEN. */
export const brokenMessage = (file: string) => `build: ${file} is BROKEN`;

/** The same repository with the quick build gate (`node build.mjs`) instead of `tsc -b`. */
export async function makeQuickRepo(extraConfig = ''): Promise<TempRepo> {
  return makeTempRepo({
    files: {
      'package.json': '{\n  "name": "tiny",\n  "private": true,\n  "type": "module"\n}\n',
      '.gitignore': 'dist/\nnode_modules/\n',
      'build.mjs': QUICK_BUILD,
      'src/index.ts': 'export const one: number = 1;\n',
      'test/add.test.mjs': PASSING_TEST,
      'pool.config.yaml': `deps:\n  strategy: none\ngates:\n  build: node build.mjs\n  test: node --test\n${extraConfig}`,
    },
  });
}

/** A branch `name` from main with one commit of `files`; returns its head (main stays checked out). */
export async function branch(
  r: TempRepo,
  name: string,
  files: Record<string, string>,
): Promise<string> {
  await r.git(['switch', '-q', '-c', name, 'main']);
  const sha = await r.commit(files, `work on ${name}`);
  await r.git(['switch', '-q', 'main']);
  return sha;
}

/** Runs `git commit` for real (the installed hook runs); returns the CLI result. */
export async function commit(
  repo: TempRepo,
  cwd: string,
  files: Record<string, string>,
  env: NodeJS.ProcessEnv = {},
) {
  for (const [rel, content] of Object.entries(files)) await repo.write(rel, content, cwd);
  await repo.git(['add', '--', ...Object.keys(files)], cwd);
  return runCli('git', ['commit', '-q', '-m', `change ${Object.keys(files).join(' ')}`], {
    cwd,
    env: { ...ENV, ...env },
  });
}

export const gates = (args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) =>
  runCli(GATES_BIN, args, { cwd, env: { ...ENV, ...env } });

export const integrate = (args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) =>
  runCli(INTEGRATE_BIN, args, { cwd, env: { ...ENV, ...env } });

/** Pool settings for a tiny repository: three slots. */
export const POOL_CONFIG = 'scale:\n  min: 3\n  max: 3\n';

/** The real pool CLI on a temp repository; `json()` of a failure throws with its stderr. */
export async function pool<T = unknown>(args: string[], repo: TempRepo): Promise<T> {
  const r = await runCli(POOL_BIN, [...args, '--json', '--repo', repo.dir], {
    cwd: repo.dir,
    env: ENV,
  });
  if (r.code !== 0) throw new Error(`pool ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.json<T>();
}

/** What `pool acquire --json` prints (the fields the tests use). */
export interface Lease {
  slot: string;
  path: string;
  branch: string;
}
