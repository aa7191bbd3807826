/**
 * Which files an issue is expected to touch. Three sources, each recorded as evidence:
 * paths named in the issue's text that exist in `git ls-files`, an explicit `metadata.files`
 * list, and the files changed by commits whose message names the issue id.
 */
import { git } from '@wtpool/core';
import type { Issue } from './reader.js';

export type Evidence =
  { kind: 'text'; field: string } | { kind: 'metadata' } | { kind: 'commit'; commit: string };

/** issue id → file → how we know. */
export type FileEvidence = Map<string, Map<string, Evidence[]>>;

export interface Commit {
  hash: string;
  message: string;
  files: string[];
}

export interface RepoFiles {
  files: Set<string>;
  /** Every path suffix at a `/` boundary (and the basename) → the tracked paths ending so. */
  suffixes: Map<string, string[]>;
}

export function indexRepoFiles(paths: Iterable<string>): RepoFiles {
  const files = new Set<string>();
  const suffixes = new Map<string, string[]>();
  for (const p of paths) {
    if (!p) continue;
    files.add(p);
    for (let k = p.indexOf('/'); k !== -1; k = p.indexOf('/', k + 1)) {
      const s = p.slice(k + 1);
      const list = suffixes.get(s);
      if (list) list.push(p);
      else suffixes.set(s, [p]);
    }
  }
  return { files, suffixes };
}

/** Characters of a path-like word; anything else (space, quotes, backticks, `:`, `,`) ends it. */
const PATH_CHAR = new Uint8Array(128);
for (const c of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@+~-/')
  PATH_CHAR[c.charCodeAt(0)] = 1;

/** No tracked path is longer; a longer word is skipped unread (a pasted blob, a hash run). */
export const MAX_PATH_TOKEN = 1024;

/** A bare file name: something, a dot, then an extension starting with a letter. */
function hasExtension(w: string): boolean {
  const dot = w.lastIndexOf('.');
  if (dot <= 0 || dot === w.length - 1) return false;
  const c = w.charCodeAt(dot + 1) | 0x20;
  return c >= 0x61 && c <= 0x7a;
}

/**
 * Path-like words of a text, in one pass (each character is looked at once, whatever the text):
 * maximal runs of path characters, without leading `./` or `/` and trailing dots or slashes;
 * a word with a `/` is a path, one without is a file name when it has an extension.
 */
export function pathTokens(text: string): string[] {
  const out: string[] = [];
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c >= 128 || !PATH_CHAR[c]) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < n) {
      const d = text.charCodeAt(j);
      if (d >= 128 || !PATH_CHAR[d]) break;
      j++;
    }
    if (j - i <= MAX_PATH_TOKEN) {
      let a = i;
      let b = j;
      while (a < b && (text[a] === '/' || (text[a] === '.' && text[a + 1] === '/'))) a++;
      while (b > a && (text[b - 1] === '.' || text[b - 1] === '/')) b--;
      const w = text.slice(a, b);
      if (w && (w.includes('/') || hasExtension(w))) out.push(w);
    }
    i = j;
  }
  return out;
}

/** Tracked files a piece of text names. A bare file name counts only when it is unique. */
export function pathsInText(text: string, repo: RepoFiles): string[] {
  const out = new Set<string>();
  for (const token of pathTokens(text)) {
    if (repo.files.has(token)) {
      out.add(token);
      continue;
    }
    const hits = repo.suffixes.get(token);
    if (!hits) continue;
    if (token.includes('/') || hits.length === 1) for (const h of hits) out.add(h);
  }
  return [...out];
}

/** Issue-id-like words of a commit message: runs of [A-Za-z0-9_.-] trimmed to alphanumerics. */
export function idTokens(text: string): string[] {
  const out: string[] = [];
  const word = (c: number) =>
    (c >= 48 && c <= 57) ||
    ((c | 0x20) >= 97 && (c | 0x20) <= 122) ||
    c === 95 ||
    c === 46 ||
    c === 45;
  const alnum = (c: number) => (c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 122);
  const n = text.length;
  let i = 0;
  while (i < n) {
    if (!word(text.charCodeAt(i))) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < n && word(text.charCodeAt(j))) j++;
    let a = i;
    let b = j;
    while (a < b && !alnum(text.charCodeAt(a))) a++;
    while (b > a && !alnum(text.charCodeAt(b - 1))) b--;
    if (b - a >= 2 && b - a <= MAX_PATH_TOKEN) out.push(text.slice(a, b));
    i = j;
  }
  return out;
}

function add(ev: FileEvidence, id: string, file: string, e: Evidence): void {
  let files = ev.get(id);
  if (!files) ev.set(id, (files = new Map()));
  const list = files.get(file);
  if (list) list.push(e);
  else files.set(file, [e]);
}

/** Gathers evidence for the given issues (only those need it: the actionable and open ones). */
export function gatherEvidence(
  issues: Issue[],
  repo: RepoFiles | null,
  commits: Commit[],
): FileEvidence {
  const ev: FileEvidence = new Map();
  const ids = new Set(issues.map((i) => i.id));
  for (const is of issues) {
    for (const f of is.metadataFiles) add(ev, is.id, f.replace(/^\.\//, ''), { kind: 'metadata' });
    if (!repo) continue;
    for (const [field, text] of Object.entries(is.text)) {
      if (text) for (const f of pathsInText(text, repo)) add(ev, is.id, f, { kind: 'text', field });
    }
  }
  for (const c of commits) {
    const named = new Set<string>();
    for (const w of idTokens(c.message)) if (ids.has(w)) named.add(w);
    for (const id of named)
      for (const f of c.files) add(ev, id, f, { kind: 'commit', commit: c.hash });
  }
  return ev;
}

const gitIn = (cwd: string, args: string[]) =>
  git(['-c', 'core.quotePath=false', ...args], { cwd });

export async function gitLsFiles(cwd: string): Promise<string[]> {
  return (await gitIn(cwd, ['ls-files', '-z'])).split('\0').filter(Boolean);
}

/** The last `max` non-merge commits of HEAD with their messages and changed files. */
export async function gitCommits(cwd: string, max: number): Promise<Commit[]> {
  if (max <= 0) return [];
  const out = await gitIn(cwd, [
    'log',
    '--no-merges',
    `--max-count=${max}`,
    '--name-only',
    '--format=%x1e%H%x1f%B%x1f',
  ]);
  const commits: Commit[] = [];
  for (const chunk of out.split('\x1e')) {
    if (!chunk) continue;
    const [hash, message, files] = chunk.split('\x1f');
    if (!hash || message === undefined) continue;
    commits.push({
      hash,
      message,
      files: (files ?? '').split('\n').filter(Boolean),
    });
  }
  return commits;
}
