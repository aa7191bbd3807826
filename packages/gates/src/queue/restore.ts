/**
 * Signal-safe restore. Like lint-staged's git workflow, every step knows how to undo itself:
 * before a merge the previous head is recorded in the state (`current`); a failure, a signal
 * (SIGINT/SIGTERM/SIGHUP) or, after a crash, the recovery step at the start of the next command
 * aborts the merge and resets to that head. The repository is never left mid-merge.
 */
import { existsSync } from 'node:fs';
import { GIT_ENV, WtpoolError, commandFailed, runSync, stopChildren } from '@wtpool/core';
import type { LoadedConfig } from '@wtpool/config';
import { interruptedResult, signalExitCode } from './policy.js';
import { store } from './store.js';
import type { MergeResult } from './types.js';

/** Aborts a half-done merge and returns to the recorded head. Synchronous: usable in a signal handler. */
export function restoreSync(wt: string, prevHead: string): void {
  const run = (args: string[]) => {
    const r = runSync('git', args, { cwd: wt, extraEnv: GIT_ENV });
    if (r.code !== 0) throw commandFailed('git', args, r, { code: 'ERR_GIT', cwd: wt });
  };
  if (runSync('git', ['rev-parse', '-q', '--verify', 'MERGE_HEAD'], { cwd: wt }).code === 0) {
    runSync('git', ['merge', '--abort'], { cwd: wt, extraEnv: GIT_ENV }); // reset --hard follows
  }
  run(['reset', '--quiet', '--hard', prevHead]);
  // Files the build or tests left behind (ignored ones, e.g. node_modules and dist, stay).
  run(['clean', '-fdq']);
}

/**
 * Recovery step: a previous run that died mid-merge (crash, SIGKILL) left `current` behind.
 * Abort its merge, restore its head and record it as interrupted (it is tried again later).
 */
export async function recover(loaded: LoadedConfig): Promise<MergeResult | null> {
  const st = store(loaded);
  const { current } = await st.read();
  if (!current) return null;
  if (existsSync(current.worktree)) restoreSync(current.worktree, current.prevHead);
  const result = interruptedResult(current, new Date().toISOString());
  await st.update((s) => {
    s.current = null;
    s.results.push(result);
  });
  return result;
}

class Interrupted extends WtpoolError {
  constructor(signal: NodeJS.Signals) {
    super(
      'ERR_INTERRUPTED',
      signalExitCode(signal),
      `integrate run interrupted by ${signal}; integration restored`,
      { hint: 'run `integrate run` again to continue with the remaining branches' },
    );
  }
}

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** While `fn` runs, a signal stops the running child and is rethrown as Interrupted at the next step. */
export async function interruptible<T>(fn: (check: () => void) => Promise<T>): Promise<T> {
  let caught: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    caught ??= sig;
    stopChildren('SIGTERM');
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  try {
    return await fn(() => {
      if (caught) throw new Interrupted(caught);
    });
  } finally {
    for (const s of SIGNALS) process.off(s, onSignal);
  }
}
