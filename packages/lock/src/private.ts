import * as fsSync from 'node:fs';
import path from 'node:path';
import { errno } from '@wtpool/core';

/** Files this package writes: readable and writable by their owner only (they may hold secrets). */
export const PRIVATE_FILE_MODE = 0o600;
/** Directories this package creates: only their owner may list or enter them. */
export const PRIVATE_DIR_MODE = 0o700;

const privateDirs = new Set<string>();

/**
 * Makes `dir` (and every missing parent it creates) exist with mode 0700, whatever the umask;
 * an existing `dir` is tightened to 0700 too. Parents that existed before are left alone.
 * Remembered per process: the second call for a directory costs nothing.
 */
export function ensurePrivateDir(dir: string): void {
  const abs = path.resolve(dir);
  if (privateDirs.has(abs)) return;
  const first = fsSync.mkdirSync(abs, { recursive: true, mode: PRIVATE_DIR_MODE });
  // mkdir's mode is filtered by the umask: set it exactly, from the first created dir down.
  let d = abs;
  const created: string[] = [abs];
  if (first !== undefined) while (d !== first && (d = path.dirname(d)) !== d) created.push(d);
  for (const c of created) {
    try {
      fsSync.chmodSync(c, PRIVATE_DIR_MODE);
    } catch (e) {
      if (errno(e) !== 'ENOENT') throw e;
    }
    if (c === first) break;
  }
  privateDirs.add(abs);
}

/** Opens a new file exclusively with exactly `mode` (the umask can only remove bits: fchmod). */
export function openPrivateSync(file: string, mode = PRIVATE_FILE_MODE): number {
  const fd = fsSync.openSync(file, 'wx', mode);
  try {
    fsSync.fchmodSync(fd, mode);
  } catch (e) {
    fsSync.closeSync(fd);
    throw e;
  }
  return fd;
}
