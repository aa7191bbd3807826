/**
 * The merge queue's files in `<git common dir>/wtpool/integration/`: the state (`state.json`,
 * a JsonStore), the lock that serialises `run` and `promote`, the logs of rejected merges and
 * red bases, and `running.json`, the view of a run in progress.
 */
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { integrationStateDir, type LoadedConfig } from '@wtpool/config';
import { JsonStore, PRIVATE_FILE_MODE, ensurePrivateDir, pidAlive, withLock } from '@wtpool/lock';
import { logName } from './policy.js';
import type { IntegrationState, Running } from './types.js';

export function integrationDir(loaded: LoadedConfig): string {
  return integrationStateDir(loaded.repo);
}

export function store(loaded: LoadedConfig): JsonStore<IntegrationState> {
  return new JsonStore<IntegrationState>(path.join(integrationDir(loaded), 'state.json'), {
    initial: { current: null, results: [], green: [] },
  });
}

/** Serializes integrate commands of one repository; a second one fails fast, naming the holder. */
export async function exclusive<T>(
  loaded: LoadedConfig,
  purpose: string,
  fn: () => Promise<T>,
): Promise<T> {
  ensurePrivateDir(integrationDir(loaded));
  return withLock(path.join(integrationDir(loaded), 'queue'), fn, { timeout: 2000, purpose });
}

export const clearCurrent = (st: JsonStore<IntegrationState>) =>
  st.update((s) => {
    s.current = null;
  });

export const logsDir = (loaded: LoadedConfig) => path.join(integrationDir(loaded), 'logs');

export async function writeLog(
  loaded: LoadedConfig,
  branch: string,
  text: string,
): Promise<string> {
  const dir = logsDir(loaded);
  // A CI log may print credentials from the environment: owner-only, like the rest of the state.
  ensurePrivateDir(dir);
  const file = path.join(dir, logName(branch, new Date()));
  await fs.writeFile(file, text, { mode: PRIVATE_FILE_MODE });
  return file;
}

/** `running.json`: where the run in progress is (ephemeral; a dead pid means no run). */
export const runningFile = (loaded: LoadedConfig) =>
  path.join(integrationDir(loaded), 'running.json');

export function readRunning(loaded: LoadedConfig): Running | null {
  try {
    const r = JSON.parse(readFileSync(runningFile(loaded), 'utf8')) as Running;
    return pidAlive(r.pid) ? r : null;
  } catch {
    return null;
  }
}
