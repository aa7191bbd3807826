import { promises as fs } from 'node:fs';
import path from 'node:path';
import { PRIVATE_FILE_MODE, ensurePrivateDir } from '@wtpool/lock';
import type { PoolEvent } from './types.js';

export const eventsFile = (stateDir: string) => path.join(stateDir, 'events.jsonl');

/**
 * Appends one event line. Lines are written with a single O_APPEND write, so lines of
 * concurrent writers never interleave (each well under the page size).
 */
export async function appendEvent(
  stateDir: string,
  type: string,
  details: Record<string, unknown> = {},
): Promise<void> {
  const ev: PoolEvent = { ts: new Date().toISOString(), type, pid: process.pid, ...details };
  // Events name agents, tasks and paths: readable by the pool's owner only (D92).
  ensurePrivateDir(stateDir);
  await fs.appendFile(eventsFile(stateDir), JSON.stringify(ev) + '\n', { mode: PRIVATE_FILE_MODE });
}

/** Reads all events (for tests, the monitor and `doctor`). Torn or foreign lines are skipped. */
export async function readEvents(stateDir: string): Promise<PoolEvent[]> {
  let text: string;
  try {
    text = await fs.readFile(eventsFile(stateDir), 'utf8');
  } catch {
    return [];
  }
  const out: PoolEvent[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as PoolEvent);
    } catch {
      // skip
    }
  }
  return out;
}
