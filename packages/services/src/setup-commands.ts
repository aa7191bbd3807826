/**
 * The repository's own setup (issue 24): `pool.setup` commands (codegen, `npx prisma
 * generate`, a seeded cache, …) run in the slot after its dependencies, with the slot's env,
 * one after the other, each as `sh -c <command>`: the command string is the user's own
 * configuration, so a shell reads it as the user wrote it (no data of ours is ever spliced
 * into it; the slot's values arrive as environment variables). Their output is appended to
 * `<stateDir>/logs/setup-<slot>.log` (0600, redacted), which `pool logs <slot> --setup` prints.
 * Whether setup must run again is decided by the hash of `pool.setupInputs` (tracked files;
 * default: the lockfiles) and of the command list itself.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ExitCode, WtpoolError, git, redact, run } from '@wtpool/core';
import { ensurePrivateDir } from '@wtpool/lock';
import { firstCause, LOCKFILES } from './deps.js';
import { skipSpecs, underSkip, type IncludeStamp } from './include.js';

/** A setup command that runs longer than this is stopped (its process group) and fails. */
const SETUP_TIMEOUT_MS = 30 * 60_000;
/** Past this size the log becomes `.1` (the previous `.1` is dropped). */
const SETUP_LOG_MAX = 512 * 1024;

export const setupLogFile = (stateDir: string, slot: string) =>
  path.join(stateDir, 'logs', `setup-${slot}.log`);

/**
 * The hash deciding whether setup runs again: the command list, and the index blob of every
 * tracked file matching `inputs` (default: the lockfiles, at any depth). Reading the index, not
 * the files: a slot is clean at every point this is asked (provision, release, acquire).
 */
export async function setupInputsHash(
  dir: string,
  commands: string[],
  inputs: string[] | null,
): Promise<string> {
  const globs = inputs ?? LOCKFILES.map((f) => `**/${f}`);
  const h = createHash('sha256').update(JSON.stringify(commands)).update('\0');
  if (globs.length) {
    const out = await git(['ls-files', '-s', '-z', '--', ...globs.map((g) => `:(glob)${g}`)], {
      cwd: dir,
    });
    // `<mode> <object> <stage>\t<path>`, sorted by path by git.
    for (const e of out.split('\0').filter(Boolean)) h.update(e).update('\0');
  }
  return h.digest('hex');
}

async function appendLog(file: string, text: string): Promise<void> {
  const st = await fs.stat(file).catch(() => null);
  if (st && st.size > SETUP_LOG_MAX) await fs.rename(file, `${file}.1`);
  const fh = await fs.open(file, 'a', 0o600);
  try {
    await fh.writeFile(text);
  } finally {
    await fh.close();
  }
}

export interface SetupRun {
  slot: string;
  stateDir: string;
  env: Record<string, string>;
  progress?: ((message: string) => void) | undefined;
}

/**
 * Runs the commands in order in `dir`; the first that fails stops the others and is the error
 * (exit 3, like a configuration error: the same commit fails the same way, so the pool neither
 * waits for it nor grows past it — the broken-slot breaker), naming the command, the first
 * line of its output that says why, and the log.
 */
export async function runSetup(dir: string, commands: string[], o: SetupRun): Promise<void> {
  const log = setupLogFile(o.stateDir, o.slot);
  ensurePrivateDir(path.dirname(log));
  for (const [i, cmd] of commands.entries()) {
    const what = `setup ${i + 1}/${commands.length}`;
    o.progress?.(`${o.slot}: ${what}: ${cmd}…`);
    await appendLog(log, `# ${new Date().toISOString()} ${o.slot}: ${what}: ${cmd} (in ${dir})\n`);
    // CI=true: no prompts, no interactive progress; a process group, so a timeout stops it all.
    const r = await run('sh', ['-c', cmd], {
      cwd: dir,
      extraEnv: { ...o.env, CI: 'true' },
      group: true,
      timeoutMs: SETUP_TIMEOUT_MS,
    });
    const output = redact(r.output);
    await appendLog(
      log,
      `${output}${output && !output.endsWith('\n') ? '\n' : ''}# ${what} exit ${r.code} (${r.ms} ms)\n`,
    );
    if (r.code === 0) continue;
    const cause = r.timedOut
      ? `stopped after ${SETUP_TIMEOUT_MS / 60_000} minutes`
      : r.code === 127 && !r.output.trim()
        ? 'command not found'
        : firstCause(output) || `exit ${r.code}`;
    throw new WtpoolError(
      'ERR_SETUP',
      ExitCode.CONFIG,
      redact(
        `pool.setup command ${i + 1} \`${cmd}\` failed in ${dir} (exit ${r.code}): ${cause} (log: ${log})`,
      ),
      {
        hint: `fix the command (pool.setup) or what it reads, then \`pool doctor --fix\`; its output: \`pool logs ${o.slot} --setup\``,
        details: { command: cmd, index: i + 1, exitCode: r.code, log },
      },
    );
  }
}

/** Walks a directory (no symlink followed, no nested repository entered): its files. */
async function walkFiles(root: string, rel: string, out: string[]): Promise<void> {
  const abs = path.join(root, rel);
  const st = await fs.lstat(abs).catch(() => null);
  if (!st) return;
  if (!st.isDirectory()) {
    out.push(rel);
    return;
  }
  if (await fs.lstat(path.join(abs, '.git')).catch(() => null)) return;
  for (const e of await fs.readdir(abs)) await walkFiles(root, `${rel}/${e}`, out);
}

/**
 * What setup left in the slot: every ignored file outside `skip` (pool.keep: the caches are
 * kept anyway) and `exclude` (the included files, the pool's own files), with the stamp that
 * tells later whether the agent changed it.
 */
export async function setupOutputs(
  dir: string,
  skip: string[],
  exclude: Set<string>,
): Promise<Record<string, IncludeStamp>> {
  const out = await git(
    [
      'ls-files',
      '-z',
      '--others',
      '--ignored',
      '--exclude-standard',
      '--directory',
      '--',
      ...skipSpecs(skip),
    ],
    { cwd: dir },
  );
  const files: string[] = [];
  for (const e of out.split('\0').filter(Boolean)) {
    const rel = e.replace(/\/+$/, '');
    if (underSkip(rel, skip)) continue; // git lists an excluded directory itself
    if (e.endsWith('/')) await walkFiles(dir, rel, files);
    else files.push(rel);
  }
  const stamps: Record<string, IncludeStamp> = {};
  for (const rel of files.sort()) {
    if (exclude.has(rel)) continue;
    const st = await fs.lstat(path.join(dir, rel)).catch(() => null);
    if (!st) continue;
    const link = st.isSymbolicLink()
      ? await fs.readlink(path.join(dir, rel)).catch(() => undefined)
      : undefined;
    stamps[rel] = {
      ...(link !== undefined ? { link } : {}),
      size: st.size,
      mtimeMs: st.mtimeMs,
    };
  }
  return stamps;
}
