/**
 * The tokens of a lock directory (see lock.ts): `free` and `held.<pid>.<host>.<nonce>`, how
 * to read them in one snapshot, which are abandoned, and the rule that makes a token taken the
 * holder's only when it is the only one (issue 21 item 3, D300).
 */
import * as fsSync from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { errno } from '@wtpool/core';

export const FREE = 'free';
export const HELD = 'held.';
export const hostTag =
  os
    .hostname()
    .replace(/[^A-Za-z0-9-]/g, '_')
    .slice(0, 64) || 'host';
/** Nonces of the locks this process holds now: a token with our pid and another nonce is a leftover. */
export const heldHere = new Set<string>();

export interface Token {
  name: string;
  pid: number;
  host: string;
  nonce: string;
}

export function parseToken(name: string): Token | undefined {
  if (!name.startsWith(HELD)) return undefined;
  const [pid, host, nonce, ...rest] = name.slice(HELD.length).split('.');
  if (!pid || !host || !nonce || rest.length || !/^\d+$/.test(pid)) return undefined;
  return { name, pid: Number(pid), host, nonce };
}

/** Is `pid` alive on this host? (EPERM means it exists but is not ours.) */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errno(e) === 'EPERM';
  }
}

/** A holder that cannot come back: a dead pid of this host, or a leftover of our own pid. */
export function tokenDead(t: Token): boolean {
  if (t.host !== hostTag) return false;
  if (t.pid === process.pid) return !heldHere.has(t.nonce);
  return !pidAlive(t.pid);
}

/** Every token in the lock directory, from one `readdir` (one snapshot), with its ctime. */
export interface DirView {
  free: boolean;
  held: Array<Token & { changedMs: number }>;
}

export function readView(dir: string): DirView | undefined {
  let names: string[];
  try {
    names = fsSync.readdirSync(dir);
  } catch (e) {
    if (errno(e) === 'ENOENT') return undefined;
    throw e;
  }
  const view: DirView = { free: names.includes(FREE), held: [] };
  for (const n of names) {
    const token = parseToken(n);
    if (!token) continue;
    try {
      view.held.push({ ...token, changedMs: fsSync.statSync(path.join(dir, n)).ctimeMs });
    } catch (e) {
      // It changed hands since the readdir: it is not a token any more; the caller looks again.
      if (errno(e) !== 'ENOENT') throw e;
    }
  }
  return view;
}

/** A token nobody holds any more: its pid is dead, or it has not been refreshed for `stale`. */
export const abandoned = (t: Token & { changedMs: number }, stale: number) =>
  tokenDead(t) || Date.now() - t.changedMs >= stale;

/**
 * A directory with more than one token (a `free` beside a dead holder's record, two records:
 * left by a crash of an older version, a copy, or a hand) must never let two processes in, one
 * through each token. Nothing of ours ever adds a token, so such a state only shrinks: the
 * abandoned records (dead pid, or not refreshed for `stale`) are removed, never taken over.
 * When nothing else is left to hold (no `free`, no live record), the one with the smallest
 * name is kept, so that racing cleaners agree and the directory keeps a token to take over.
 */
export function dropExtraTokens(dir: string, view: DirView, stale: number): boolean {
  const gone = view.held
    .filter((t) => abandoned(t, stale))
    .sort((x, y) => (x.name < y.name ? -1 : 1));
  const keeper = view.free || gone.length < view.held.length;
  let cleared = false;
  for (const t of keeper ? gone : gone.slice(1)) cleared = unlinkToken(dir, t.name) || cleared;
  return cleared;
}

function unlinkToken(dir: string, name: string): boolean {
  try {
    fsSync.unlinkSync(path.join(dir, name));
    return true;
  } catch (e) {
    const code = errno(e);
    if (code === 'ENOENT') return false;
    if (code === 'EISDIR' || code === 'EPERM') {
      fsSync.rmSync(path.join(dir, name), { recursive: true, force: true });
      return true;
    }
    throw e;
  }
}

/**
 * After taking a token, make sure it is the only one: a second token (a `free` beside a dead
 * record that someone else took over, or the reverse) would let a second process in. Every
 * other abandoned record and every `free` is removed; if a live, fresh record is there, we give
 * ours back (renamed to `free`) and wait: it may be a holder inside its section. Of two
 * processes that took tokens at once, the later one's check sees the earlier one's token, so
 * at most one goes on (both may give back; then they retry).
 */
export function soleToken(dir: string, me: string, stale: number): 'sole' | 'yielded' | 'lost' {
  for (;;) {
    const view = readView(dir);
    if (!view || !view.held.some((t) => t.name === me)) return 'lost';
    const others = view.held.filter((t) => t.name !== me);
    if (!view.free && !others.length) return 'sole';
    if (others.some((t) => !abandoned(t, stale))) {
      try {
        fsSync.renameSync(path.join(dir, me), path.join(dir, FREE));
        return 'yielded';
      } catch (e) {
        if (errno(e) === 'ENOENT') return 'lost';
        throw e;
      }
    }
    if (view.free) unlinkToken(dir, FREE);
    for (const t of others) unlinkToken(dir, t.name);
  }
}
