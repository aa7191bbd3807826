/**
 * Reading beads issue files. The file is streamed line by line (a beads export can be large and
 * is appended to by many agents); unknown fields, statuses and types are kept; tombstones are
 * skipped; a malformed line is reported by its number and skipped (fatal with `strict`).
 */
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { errno, failure, notFoundError, usageError } from '@wtpool/core';
import { BV_MAX_LINE_BYTES, bvLine, type BvIssue } from './bv-loader.js';

export interface Dependency {
  /** The issue this one depends on (`depends_on_id`). */
  target: string;
  /** `blocks`, `parent-child`, `related`, … (empty string for legacy untyped edges). */
  type: string;
}

export interface Issue {
  id: string;
  title: string;
  status: string;
  /** 0 = most urgent … 4; missing or invalid values read as 2 (beads' default). */
  priority: number;
  issueType: string;
  labels: string[];
  deps: Dependency[];
  /** Free text searched for file paths. */
  text: { description?: string; design?: string; acceptance_criteria?: string; notes?: string };
  /** `metadata.files`, when the issue lists the files it touches explicitly. */
  metadataFiles: string[];
  /** Ephemeral (wisp) issues: molecule steps and messages, not long-lived work. */
  ephemeral: boolean;
  /** ISO time before which the issue is deferred (`defer_until`), if any. */
  deferUntil?: string;
  /** Who holds the issue (`assignee`; empty when nobody). */
  assignee: string;
  /** `wisp_type` of an ephemeral wisp (heartbeat, patrol, …), empty otherwise. */
  wispType: string;
  /** The category of a custom status (`status_category`: active, wip, done, frozen), if given. */
  statusCategory?: string;
  /** The line's fields this reader does not read (kept for `--json` and dispatch). */
  extra?: Record<string, unknown>;
}

export interface LineProblem {
  line: number;
  message: string;
}

export interface ReadResult {
  file: string;
  issues: Issue[];
  /** Lines that could not be read as issues (line number, why). */
  malformed: LineProblem[];
  tombstones: number;
  lines: number;
  /** With `bv`: the issues bv's loader keeps from the same lines, and the lines it skips. */
  bv?: { issues: BvIssue[]; skipped: LineProblem[] };
}

export interface ReadOptions {
  strict?: boolean;
  /** Also read the lines as beads_viewer's loader does (for `--format bv`). */
  bv?: boolean;
}

/** The longest line read (bv's loader buffer, 10 MiB); a longer one is a malformed line. */
export const MAX_LINE_BYTES = BV_MAX_LINE_BYTES;

const TEXT_FIELDS = ['description', 'design', 'acceptance_criteria', 'notes'] as const;

/** The fields toIssue reads; every other field of a line is kept in `extra`. */
const READ_FIELDS: ReadonlySet<string> = new Set([
  'id',
  'title',
  'status',
  'status_category',
  'priority',
  'issue_type',
  'labels',
  'dependencies',
  'parent',
  ...TEXT_FIELDS,
  'metadata',
  'ephemeral',
  'assignee',
  'wisp_type',
  'defer_until',
]);

/** Where a missing export comes from (beads ≥ 1.0 keeps issues in its database). */
export const EXPORT_HINT =
  'write one with `bd export -o .beads/issues.jsonl` (once: `bd config set export.auto true`; beads_rust: `br sync --flush-only`), or pipe it in: `bd export | tracks analyze --file -`';

/** `--file -`: read the issues from stdin. */
export const STDIN_FILE = '-';

/**
 * Where beads tools find the issue file: `metadata.json` key `jsonl_export`, then `issues.jsonl`,
 * then `beads.jsonl`, all inside the beads directory.
 */
export function findIssueFile(beadsDir: string): string {
  const meta = path.join(beadsDir, 'metadata.json');
  if (existsSync(meta)) {
    try {
      const m = JSON.parse(readFileSync(meta, 'utf8')) as { jsonl_export?: unknown };
      if (typeof m.jsonl_export === 'string' && m.jsonl_export) {
        const named = path.resolve(beadsDir, m.jsonl_export);
        if (existsSync(named)) return named;
      }
    } catch {
      // an unreadable metadata.json: fall back to the default names, like beads does
    }
  }
  for (const name of ['issues.jsonl', 'beads.jsonl']) {
    const f = path.join(beadsDir, name);
    if (existsSync(f)) return f;
  }
  // One line: the export is the user's to make (tracks never runs bd: it may migrate the store).
  throw notFoundError(`no beads export in ${beadsDir} (issues.jsonl, beads.jsonl): ${EXPORT_HINT}`);
}

type Shape = { issue: Issue } | { tombstone: true } | { foreign: string } | { bad: string };

/** What a record that is not a beads issue looks like, for the message. */
function foreignShape(o: Record<string, unknown>): string | undefined {
  if (typeof o.id !== 'string') return undefined;
  if ('ts' in o && 'by' in o && !('title' in o))
    return 'a deletions manifest ({id, ts, by, reason})';
  if (!('issue_type' in o) && ('deps' in o || 'type' in o))
    return 'a different tracker schema (`type`/`deps` instead of `issue_type`/`dependencies`)';
  if (!('title' in o) && !('status' in o)) return 'records without title or status';
  return undefined;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function toIssue(o: Record<string, unknown>): Shape {
  const foreign = foreignShape(o);
  if (foreign) return { foreign };
  const id = str(o.id);
  if (!id) return { bad: 'no string `id`' };
  const status = str(o.status) ?? 'open';
  if (status === 'tombstone' || typeof o.deleted_at === 'string') return { tombstone: true };
  const p = o.priority;
  const priority = typeof p === 'number' && Number.isInteger(p) && p >= 0 && p <= 4 ? p : 2;
  const deps: Dependency[] = [];
  if (Array.isArray(o.dependencies)) {
    for (const d of o.dependencies as Record<string, unknown>[]) {
      const target = d && str(d.depends_on_id);
      // A dependency row names its own issue; rows copied from another issue are not ours.
      if (!target || (d.issue_id !== undefined && d.issue_id !== id)) continue;
      deps.push({ target, type: str(d.type) ?? '' });
    }
  }
  // Dolt-era exports also carry `parent`; it is the same edge as a parent-child dependency.
  const parent = str(o.parent);
  if (parent && !deps.some((d) => d.type === 'parent-child' && d.target === parent)) {
    deps.push({ target: parent, type: 'parent-child' });
  }
  const text: Issue['text'] = {};
  for (const f of TEXT_FIELDS) {
    const v = str(o[f]);
    if (v) text[f] = v;
  }
  const meta =
    o.metadata && typeof o.metadata === 'object' ? (o.metadata as Record<string, unknown>) : {};
  const metadataFiles = Array.isArray(meta.files)
    ? meta.files.filter((f): f is string => typeof f === 'string')
    : [];
  const issue: Issue = {
    id,
    title: str(o.title) ?? '',
    status,
    priority,
    issueType: str(o.issue_type) ?? 'task',
    labels: Array.isArray(o.labels)
      ? o.labels.filter((l): l is string => typeof l === 'string')
      : [],
    deps,
    text,
    metadataFiles,
    ephemeral: o.ephemeral === true,
    assignee: str(o.assignee) ?? '',
    wispType: str(o.wisp_type) ?? '',
  };
  const defer = str(o.defer_until);
  if (defer) issue.deferUntil = defer;
  const category = str(o.status_category);
  if (category) issue.statusCategory = category;
  let extra: Record<string, unknown> | undefined;
  for (const k in o) {
    if (READ_FIELDS.has(k) || !Object.prototype.hasOwnProperty.call(o, k)) continue;
    (extra ??= {})[k] = o[k];
  }
  if (extra) issue.extra = extra;
  return { issue };
}

const isDirectory = (file: string) =>
  usageError(`${file} is a directory, not an issue file`, {
    hint: 'use --beads-dir DIR for a beads directory',
  });

/**
 * Reads a beads issue file (streamed), or stdin for `-` (`bd export | tracks … --file -`).
 * Throws a clear error for a file that holds no issues.
 */
export async function readIssueFile(
  file: string,
  opts: ReadOptions & { stdin?: AsyncIterable<Buffer | string> } = {},
): Promise<ReadResult> {
  if (file === STDIN_FILE) {
    if (!opts.stdin && process.stdin.isTTY) {
      throw usageError('--file - reads the issues from stdin, which is a terminal', {
        hint: 'pipe an export in: `bd export | tracks analyze --file -`',
      });
    }
    return readIssueLines(splitLines(opts.stdin ?? process.stdin), '<stdin>', opts);
  }
  // Opening a directory succeeds on Linux (only the read fails), so it is told apart here.
  if (statSync(file, { throwIfNoEntry: false })?.isDirectory()) throw isDirectory(file);
  const stream = createReadStream(file, { highWaterMark: 1 << 20 });
  const opened = new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', reject);
  });
  try {
    await opened;
  } catch (e) {
    if (errno(e) === 'ENOENT') throw notFoundError(`issue file not found: ${file}`);
    if (errno(e) === 'EISDIR') throw isDirectory(file);
    throw e;
  }
  return readIssueLines(splitLines(stream), file, opts);
}

/** A line longer than MAX_LINE_BYTES, counted but never held in memory. */
export interface LongLine {
  tooLong: number;
}

/**
 * Lines of a byte stream (`\n`, a trailing `\r` dropped), decoded as UTF-8 one whole line at a
 * time. A line of MAX_LINE_BYTES or more is not assembled: its bytes are counted and dropped.
 */
export async function* splitLines(
  stream: AsyncIterable<Buffer | string>,
): AsyncGenerator<string | LongLine> {
  let parts: Buffer[] = [];
  let size = 0;
  const finish = (): string | LongLine => {
    const out: string | LongLine =
      size >= MAX_LINE_BYTES ? { tooLong: size } : Buffer.concat(parts, size).toString('utf8');
    parts = [];
    size = 0;
    return typeof out === 'string' && out.endsWith('\r') ? out.slice(0, -1) : out;
  };
  for await (const c of stream) {
    // a stream with an encoding set yields strings
    const chunk = typeof c === 'string' ? Buffer.from(c) : c;
    let from = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, from)) {
      if (size < MAX_LINE_BYTES) parts.push(chunk.subarray(from, nl));
      size += nl - from;
      yield finish();
      from = nl + 1;
    }
    if (from < chunk.length) {
      if (size < MAX_LINE_BYTES) parts.push(chunk.subarray(from));
      size += chunk.length - from;
    }
  }
  if (size > 0) yield finish();
}

/** Reads issues from any source of lines (a file stream, or an array in tests). */
export async function readIssueLines(
  lines: AsyncIterable<string | LongLine> | Iterable<string | LongLine>,
  file: string,
  opts: ReadOptions = {},
): Promise<ReadResult> {
  const issues: Issue[] = [];
  const malformed: LineProblem[] = [];
  /** id → [line, index in issues] */
  const seen = new Map<string, [number, number]>();
  const foreign = new Map<string, number>();
  let tombstones = 0;
  let n = 0;
  const bv = opts.bv ? { issues: [] as BvIssue[], skipped: [] as LineProblem[] } : undefined;
  const problem = (message: string) => {
    if (opts.strict) {
      throw failure('ERR_MALFORMED_LINE', `${file}:${n}: ${message}`, {
        hint: 'fix the line, or run without --strict to skip malformed lines',
      });
    }
    malformed.push({ line: n, message });
  };
  for await (const raw of lines) {
    n++;
    // Characters ≤ bytes ≤ 3 × characters: the byte count is needed only near the limit.
    const bytes =
      typeof raw !== 'string'
        ? raw.tooLong
        : raw.length * 3 >= MAX_LINE_BYTES
          ? Buffer.byteLength(raw)
          : 0;
    if (bytes >= MAX_LINE_BYTES || typeof raw !== 'string') {
      const mib = (bytes / 2 ** 20).toFixed(1);
      bv?.skipped.push({ line: n, message: `line too long (exceeds ${MAX_LINE_BYTES} bytes)` });
      problem(`line too long (${mib} MiB; the limit is ${MAX_LINE_BYTES / 2 ** 20} MiB)`);
      continue;
    }
    // A UTF-8 byte order mark on the first line is not part of the JSON (bv strips it too).
    const text = n === 1 && raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
    const line = text.trim();
    if (!line) {
      // bv skips an empty line silently, one of blanks as malformed JSON
      if (text) bv?.skipped.push({ line: n, message: 'malformed JSON' });
      continue;
    }
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch (e) {
      bv?.skipped.push({ line: n, message: 'malformed JSON' });
      problem(`not JSON (${(e as Error).message})`);
      continue;
    }
    if (bv) {
      const b = bvLine(o);
      if ('issue' in b) bv.issues.push(b.issue);
      else bv.skipped.push({ line: n, message: b.skip });
    }
    if (!o || typeof o !== 'object' || Array.isArray(o)) {
      problem('not a JSON object');
      continue;
    }
    const shape = toIssue(o as Record<string, unknown>);
    if ('tombstone' in shape) tombstones++;
    else if ('foreign' in shape) {
      foreign.set(shape.foreign, (foreign.get(shape.foreign) ?? 0) + 1);
      if (issues.length) problem(`not a beads issue: looks like ${shape.foreign}`);
    } else if ('bad' in shape) problem(shape.bad);
    else {
      const prev = seen.get(shape.issue.id);
      if (prev !== undefined) {
        // Later lines win, as in a beads import; the duplicate is reported.
        malformed.push({
          line: n,
          message: `duplicate id ${shape.issue.id} (also line ${prev[0]}); the later line is used`,
        });
        issues[prev[1]] = shape.issue;
        seen.set(shape.issue.id, [n, prev[1]]);
      } else {
        seen.set(shape.issue.id, [n, issues.length]);
        issues.push(shape.issue);
      }
    }
  }
  if (issues.length === 0 && (foreign.size > 0 || malformed.length > 0)) {
    const first = malformed[0];
    const what = foreign.size
      ? [...foreign.keys()][0]
      : `${malformed.length} malformed line(s) (line ${first!.line}: ${first!.message})`;
    throw failure('ERR_NOT_BEADS', `${file} is not a beads issue file: it holds ${what}`, {
      hint: 'point --file at .beads/issues.jsonl (the `bd export` output), or use --beads-dir',
    });
  }
  return { file, issues, malformed, tombstones, lines: n, ...(bv ? { bv } : {}) };
}
