/**
 * Which files an issue is expected to touch. Three sources, each recorded as evidence:
 * paths named in the issue's text that exist in `git ls-files`, an explicit `metadata.files`
 * list, and the files changed by commits whose message names the issue id.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Issue } from './reader.js';

const execFileP = promisify(execFile);

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

// Path-like words: a/b/c.ext, dir/file, or file.ext. Backticks, quotes and `:line` stop a match.
const PATH_TOKEN =
  /[A-Za-z0-9_.@+~-]*(?:\/[A-Za-z0-9_.@+~-]+)+|[A-Za-z0-9_@+-][A-Za-z0-9_.@+-]*\.[A-Za-z][A-Za-z0-9]{0,7}/g;

/** Tracked files a piece of text names. A bare file name counts only when it is unique. */
export function pathsInText(text: string, repo: RepoFiles): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(PATH_TOKEN)) {
    const token = m[0].replace(/^(\.\/|\/)+/, '').replace(/[.]+$/, '');
    if (!token) continue;
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

function add(ev: FileEvidence, id: string, file: string, e: Evidence): void {
  let files = ev.get(id);
  if (!files) ev.set(id, (files = new Map()));
  const list = files.get(file);
  if (list) list.push(e);
  else files.set(file, [e]);
}

const ID_TOKEN = /[A-Za-z0-9][A-Za-z0-9_.-]*[A-Za-z0-9]/g;

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
    for (const m of c.message.matchAll(ID_TOKEN)) if (ids.has(m[0])) named.add(m[0]);
    for (const id of named)
      for (const f of c.files) add(ev, id, f, { kind: 'commit', commit: c.hash });
  }
  return ev;
}

async function git(cwd: string, args: string[]): Promise<string> {
  const { stdout } = await execFileP('git', ['-c', 'core.quotePath=false', ...args], {
    cwd,
    maxBuffer: 256 << 20,
  });
  return stdout;
}

export async function gitLsFiles(cwd: string): Promise<string[]> {
  return (await git(cwd, ['ls-files', '-z'])).split('\0').filter(Boolean);
}

/** The last `max` non-merge commits of HEAD with their messages and changed files. */
export async function gitCommits(cwd: string, max: number): Promise<Commit[]> {
  if (max <= 0) return [];
  const out = await git(cwd, [
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
