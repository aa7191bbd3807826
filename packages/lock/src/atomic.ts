import * as fsSync from 'node:fs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { errno } from '@wtpool/core';
import { PRIVATE_FILE_MODE, ensurePrivateDir, openPrivateSync } from './private.js';

let tempCounter = 0;

/**
 * A temp name in the same directory (rename and link only are atomic within a filesystem),
 * unique per host: pid plus a per-process counter (the random part only guards against a pid
 * reused by a process that finds a leftover of its namesake). No node:crypto on the hot path.
 */
export function tempPath(target: string): string {
  const unique = `${process.pid}.${++tempCounter}.${Math.random().toString(36).slice(2, 8)}`;
  return path.join(path.dirname(target), `.${path.basename(target)}.${unique}.tmp`);
}

/**
 * Writes `data` to a new temp file beside `target` and fsyncs it. Returns the temp path. The
 * file has exactly `mode` (default 0600, whatever the umask).
 */
export async function writeTemp(
  target: string,
  data: string,
  mode = PRIVATE_FILE_MODE,
): Promise<string> {
  const tmp = tempPath(target);
  const fh = await fs.open(tmp, 'wx', mode);
  try {
    await fh.chmod(mode);
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  return tmp;
}

/** writeTemp, synchronously (for short critical sections; see JsonStore). */
export function writeTempSync(target: string, data: string, mode = PRIVATE_FILE_MODE): string {
  const tmp = tempPath(target);
  const fd = openPrivateSync(tmp, mode);
  try {
    fsSync.writeFileSync(fd, data);
    fsSync.fsyncSync(fd);
  } catch (e) {
    fsSync.closeSync(fd);
    fsSync.rmSync(tmp, { force: true });
    throw e;
  }
  fsSync.closeSync(fd);
  return tmp;
}

/**
 * Replaces `target` with `data` atomically: temp file, fsync, rename. A reader sees the old
 * or the new content, never a torn file, even if this process is killed at any instant.
 * The file gets exactly `mode`: 0600 unless told otherwise (it may hold a secret).
 */
export async function writeFileAtomic(
  target: string,
  data: string,
  opts: { mode?: number } = {},
): Promise<void> {
  const tmp = await writeTemp(target, data, opts.mode);
  try {
    await fs.rename(tmp, target);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

/**
 * writeFileAtomic for a file that may hold a credential: the file is 0600 and its directory is
 * created (or tightened) to 0700, whatever the umask.
 */
export async function writePrivateFile(target: string, data: string): Promise<void> {
  ensurePrivateDir(path.dirname(target));
  await writeFileAtomic(target, data);
}

/**
 * Creates `target` with `data` only if it does not exist yet. Among any number of racing
 * processes exactly one gets `true`. The content is complete the instant the name appears
 * (written to a temp file first, then hard-linked into place, which fails with EEXIST).
 */
export async function createExclusive(target: string, data: string | object): Promise<boolean> {
  const text = typeof data === 'string' ? data : JSON.stringify(data, null, 2) + '\n';
  const tmp = await writeTemp(target, text);
  try {
    await fs.link(tmp, target);
    return true;
  } catch (e) {
    if (errno(e) === 'EEXIST') return false;
    throw e;
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

/** Reads and parses a JSON file; undefined when it does not exist. */
export async function readJsonFile<T>(file: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if (errno(e) === 'ENOENT') return undefined;
    throw e;
  }
  return JSON.parse(text) as T;
}
