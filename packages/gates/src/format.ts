/**
 * The format gate. Pre-commit: the configured check (`gates.format`) on the staged files,
 * through lint-staged, which hides the unstaged parts of partially staged files while the check
 * runs (so it sees exactly what will be committed) and restores them afterwards. The merge
 * queue: the same check on the files a merge added or changed (`checkFilesFormat`); the
 * full-tree check stays in `gates ci`.
 *
 * A format gate with nothing to run is skipped, saying why in its one report line (D330):
 * `gates.format` set to a no-op (`true`, `:`, `exit 0`: a repository without a formatter), or
 * left at its default (prettier) in a repository where prettier is not installed. A formatter
 * the configuration names explicitly and that is missing still fails (exit 127): the check was
 * asked for.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { defaultConfig } from '@wtpool/config';
import { failure } from '@wtpool/core';
import { gateEnv, shell } from './exec.js';
import type { GateResult, PipelineOptions } from './gate-types.js';

const NOOP = /^\s*(true|:|exit 0)\s*$/;
let defaultFormat: string | undefined;

/** `program` is an executable file in one of `PATH`'s directories. */
function onPath(program: string, envPath: string): boolean {
  return envPath
    .split(path.delimiter)
    .filter(Boolean)
    .some((dir) => {
      const f = path.join(dir, program);
      try {
        return existsSync(f) && statSync(f).isFile() && (statSync(f).mode & 0o111) !== 0;
      } catch {
        return false;
      }
    });
}

/**
 * Why the format gate has nothing to run here, or null when it runs: a no-op command, or the
 * default command whose program is not installed (on the gates' PATH: the worktree's and the
 * main checkout's node_modules/.bin, then PATH).
 */
export function formatSkipReason(
  command: string,
  opts: Pick<PipelineOptions, 'cwd' | 'mainRoot' | 'env'>,
): string | null {
  if (NOOP.test(command)) return `no formatter configured (gates.format: ${command.trim()})`;
  defaultFormat ??= defaultConfig().gates.format;
  if (command !== defaultFormat) return null;
  const program = command.trim().split(/\s+/)[0]!;
  const env = gateEnv([opts.cwd, opts.mainRoot], opts.env);
  if (onPath(program, env.PATH ?? '')) return null;
  return `no formatter: ${program} is not installed and gates.format is not set; nothing to check`;
}

const skippedFormat = (why: string): GateResult => ({
  name: 'format',
  status: 'skipped',
  command: why,
  ms: 0,
});

/** `sh -c '<format> "$@"' gates <files…>`: file names are arguments, never shell text. */
const withFiles = (command: string) => `${command} "$@"`;

export async function checkStagedFormat(
  command: string,
  opts: Pick<PipelineOptions, 'cwd' | 'mainRoot' | 'env'>,
): Promise<GateResult> {
  const skip = formatSkipReason(command, opts);
  if (skip) return skippedFormat(skip);
  const started = Date.now();
  let files: string[] = [];
  let output = '';
  let exitCode = 0;
  const logged: string[] = [];
  const log = (...args: unknown[]) => logged.push(args.map(String).join(' '));
  // Loaded on use: lint-staged and its dependencies are only needed by this gate.
  const { default: lintStaged } = await import('lint-staged');
  const ok = await lintStaged(
    {
      cwd: opts.cwd,
      quiet: true,
      color: false,
      relative: true,
      config: {
        '*': {
          title: 'format',
          task: async (staged: readonly string[]) => {
            files = [...staged];
            const r = await shell(withFiles(command), {
              cwd: opts.cwd,
              env: gateEnv([opts.cwd, opts.mainRoot], opts.env),
              args: ['gates', ...files],
            });
            output = r.output;
            exitCode = r.code;
            if (r.code !== 0) throw failure('ERR_FORMAT', `format check failed (exit ${r.code})`);
          },
        },
      },
    },
    { log, warn: log, error: log, debug: () => {} },
  );
  const reproduce = `${command} ${files.map(quote).join(' ')}`.trim();
  return {
    name: 'format',
    status: ok ? 'passed' : 'failed',
    command: files.length
      ? `${command} <${files.length} staged file(s)>`
      : `${command} (no staged files)`,
    ms: Date.now() - started,
    exitCode: ok ? 0 : exitCode || 1,
    output: [output, ok ? '' : logged.join('\n')].filter((s) => s.trim()).join('\n'),
    reproduce,
  };
}

/** Files handed to one run of the check: far below any argument-list limit. */
const CHUNK = 2000;

/** `gates.format` on the given files (relative to `cwd`), in chunks; skipped when there are none. */
export async function checkFilesFormat(
  command: string,
  files: string[],
  opts: Pick<PipelineOptions, 'cwd' | 'mainRoot' | 'env' | 'onData'>,
): Promise<GateResult> {
  if (!files.length) return skippedFormat('no changed files');
  const skip = formatSkipReason(command, opts);
  if (skip) return skippedFormat(skip);
  const started = Date.now();
  let output = '';
  let exitCode = 0;
  for (let i = 0; i < files.length && exitCode === 0; i += CHUNK) {
    const r = await shell(withFiles(command), {
      cwd: opts.cwd,
      env: gateEnv([opts.cwd, opts.mainRoot], opts.env),
      args: ['gates', ...files.slice(i, i + CHUNK)],
      onData: opts.onData,
    });
    output += r.output;
    exitCode = r.code;
  }
  return {
    name: 'format',
    status: exitCode === 0 ? 'passed' : 'failed',
    command: `${command} <${files.length} changed file(s)>`,
    ms: Date.now() - started,
    exitCode,
    output,
    reproduce: `${command} ${files.map(quote).join(' ')}`,
  };
}

/** Shell-quotes a file name for the human "reproduce" line only (never executed by us). */
function quote(s: string): string {
  return /^[A-Za-z0-9_./@+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
