/**
 * beads_viewer's loader, for `--format bv`: which lines of an issue file bv keeps and what it
 * reads from them (pkg/loader/loader.go `parseIssuesWithOptions`, pkg/model/types.go `Issue`,
 * `Validate`). A line is decoded into bv's typed issue (a value of the wrong JSON type anywhere
 * skips the line, as Go's decoder does), its status trimmed and lower-cased, then validated:
 * an empty id, an empty title, a status outside bv's nine, an empty issue_type, or updated_at
 * before created_at skips it. Lines of 10 MiB or more are skipped. Nothing else is dropped:
 * tombstones and duplicate ids stay (bv's analyzer sorts them out).
 */

/** bv's statuses (model.Status.IsValid). */
export const BV_STATUSES: ReadonlySet<string> = new Set([
  'open',
  'in_progress',
  'blocked',
  'deferred',
  'pinned',
  'hooked',
  'review',
  'closed',
  'tombstone',
]);

/** bufio.NewReaderSize(r, 10 MiB): a line that does not fit is skipped. */
export const BV_MAX_LINE_BYTES = 10 * 1024 * 1024;

/** A point in time as Go holds it: seconds since the epoch and nanoseconds, plus its text. */
export interface GoTime {
  sec: number;
  nsec: number;
  /** `t.UTC().Format(time.RFC3339Nano)`. */
  text: string;
}

export interface BvDependency {
  dependsOn: string;
  type: string;
  createdAt: GoTime;
  createdBy: string;
}

export interface BvComment {
  id: number;
  author: string;
  text: string;
  createdAt: GoTime;
}

/** The fields of bv's model.Issue that its plan and its data hash read. */
export interface BvIssue {
  id: string;
  title: string;
  description: string;
  design: string;
  acceptanceCriteria: string;
  notes: string;
  status: string;
  priority: number;
  issueType: string;
  assignee: string;
  sourceRepo: string;
  externalRef: string | null;
  estimatedMinutes: number | null;
  createdAt: GoTime;
  updatedAt: GoTime;
  closedAt: GoTime | null;
  labels: string[];
  /** null entries are kept: Go keeps a nil *Dependency and every reader skips it. */
  dependencies: (BvDependency | null)[];
  comments: (BvComment | null)[];
}

class Skip {
  constructor(readonly reason: string) {}
}

const pad = (n: number, w: number) => String(n).padStart(w, '0');

/** Go's zero time, 0001-01-01T00:00:00Z. */
export const GO_ZERO_TIME: GoTime = zeroTime();

function zeroTime(): GoTime {
  const d = new Date(0);
  d.setUTCFullYear(1, 0, 1);
  d.setUTCHours(0, 0, 0, 0);
  return { sec: d.getTime() / 1000, nsec: 0, text: '0001-01-01T00:00:00Z' };
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/;
const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const leap = (y: number) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;

/** Go's `time.Time.UnmarshalJSON` (strict RFC 3339), then `.UTC()`. */
export function parseGoTime(s: string): GoTime {
  const m = RFC3339.exec(s);
  if (!m) throw new Skip(`time "${s.slice(0, 40)}" is not RFC 3339`);
  const [y, mo, d, h, mi, se] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const dim = mo === 2 && leap(y) ? 29 : DAYS[mo - 1];
  if (!dim || d < 1 || d > dim || h > 23 || mi > 59 || se > 59) {
    throw new Skip(`time "${s}" is out of range`);
  }
  let offset = 0;
  const z = m[8]!;
  if (z !== 'Z') {
    const oh = Number(z.slice(1, 3));
    const om = Number(z.slice(4, 6));
    if (oh > 23 || om > 59) throw new Skip(`time "${s}" has an offset out of range`);
    offset = (z[0] === '-' ? -1 : 1) * (oh * 3600 + om * 60);
  }
  const digits = (m[7] ?? '').slice(0, 9);
  const nsec = digits ? Number(digits.padEnd(9, '0')) : 0;
  const t = new Date(0);
  t.setUTCFullYear(y, mo - 1, d);
  t.setUTCHours(h, mi, se, 0);
  const sec = t.getTime() / 1000 - offset;
  const u = new Date(sec * 1000);
  const frac = nsec ? `.${pad(nsec, 9).replace(/0+$/, '')}` : '';
  const text =
    `${pad(u.getUTCFullYear(), 4)}-${pad(u.getUTCMonth() + 1, 2)}-${pad(u.getUTCDate(), 2)}` +
    `T${pad(u.getUTCHours(), 2)}:${pad(u.getUTCMinutes(), 2)}:${pad(u.getUTCSeconds(), 2)}${frac}Z`;
  return { sec, nsec, text };
}

const isZero = (t: GoTime) => t.sec === GO_ZERO_TIME.sec && t.nsec === 0;
const before = (a: GoTime, b: GoTime) => a.sec < b.sec || (a.sec === b.sec && a.nsec < b.nsec);

/**
 * Go's decoder matches a JSON key to a field case-insensitively; a later key overwrites an
 * earlier one. JSON null leaves a field at its zero value.
 */
function fields(o: Record<string, unknown>): Map<string, unknown> {
  const f = new Map<string, unknown>();
  for (const [k, v] of Object.entries(o)) f.set(k.toLowerCase(), v);
  return f;
}

function str(f: Map<string, unknown>, key: string): string {
  const v = f.get(key);
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new Skip(`\`${key}\` is not a string`);
  return v;
}

function optStr(f: Map<string, unknown>, key: string): string | null {
  const v = f.get(key);
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw new Skip(`\`${key}\` is not a string`);
  return v;
}

/** A Go int: an integer that fits (JSON.parse cannot tell `1.0` from `1`: both are taken). */
function int(f: Map<string, unknown>, key: string): number | null {
  const v = f.get(key);
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
    throw new Skip(`\`${key}\` is not an integer`);
  }
  return v;
}

function time(f: Map<string, unknown>, key: string): GoTime | null {
  const v = f.get(key);
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw new Skip(`\`${key}\` is not a time string`);
  return parseGoTime(v);
}

function list(f: Map<string, unknown>, key: string): unknown[] {
  const v = f.get(key);
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new Skip(`\`${key}\` is not an array`);
  return v;
}

function object(v: unknown, what: string): Map<string, unknown> | null {
  if (v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v)) throw new Skip(`${what} is not an object`);
  return fields(v as Record<string, unknown>);
}

/** `json.Unmarshal(line, &issue)`: bv's typed issue, or why the decoder fails. */
export function decodeBvIssue(o: unknown): BvIssue {
  const f = object(o, 'the line');
  if (!f) throw new Skip('the line is null');
  // Fields bv declares but neither the plan nor the hash reads are still type-checked.
  for (const k of ['due_date', 'compacted_at']) time(f, k);
  for (const k of ['compaction_level', 'original_size']) int(f, k);
  optStr(f, 'compacted_at_commit');
  const labels = list(f, 'labels').map((l) => {
    if (l !== null && typeof l !== 'string') throw new Skip('a label is not a string');
    return l ?? '';
  });
  const dependencies = list(f, 'dependencies').map((d): BvDependency | null => {
    const df = object(d, 'a dependency');
    if (!df) return null;
    str(df, 'issue_id'); // read by Go, used by nothing: the dependency is the line's issue's
    return {
      dependsOn: str(df, 'depends_on_id'),
      type: str(df, 'type'),
      createdAt: time(df, 'created_at') ?? GO_ZERO_TIME,
      createdBy: str(df, 'created_by'),
    };
  });
  const comments = list(f, 'comments').map((c): BvComment | null => {
    const cf = object(c, 'a comment');
    if (!cf) return null;
    str(cf, 'issue_id');
    return {
      id: int(cf, 'id') ?? 0,
      author: str(cf, 'author'),
      text: str(cf, 'text'),
      createdAt: time(cf, 'created_at') ?? GO_ZERO_TIME,
    };
  });
  return {
    id: str(f, 'id'),
    title: str(f, 'title'),
    description: str(f, 'description'),
    design: str(f, 'design'),
    acceptanceCriteria: str(f, 'acceptance_criteria'),
    notes: str(f, 'notes'),
    status: str(f, 'status'),
    priority: int(f, 'priority') ?? 0,
    issueType: str(f, 'issue_type'),
    assignee: str(f, 'assignee'),
    sourceRepo: str(f, 'source_repo'),
    externalRef: optStr(f, 'external_ref'),
    estimatedMinutes: int(f, 'estimated_minutes'),
    createdAt: time(f, 'created_at') ?? GO_ZERO_TIME,
    updatedAt: time(f, 'updated_at') ?? GO_ZERO_TIME,
    closedAt: time(f, 'closed_at'),
    labels,
    dependencies,
    comments,
  };
}

/** `normalizeIssueStatus` then `Issue.Validate`: why bv skips the issue, or null. */
export function bvInvalid(is: BvIssue): string | null {
  const trimmed = is.status.trim();
  if (trimmed) is.status = trimmed.toLowerCase();
  if (!is.id) return 'issue ID cannot be empty';
  if (!is.title) return 'issue title cannot be empty';
  if (!BV_STATUSES.has(is.status)) return `invalid status: ${is.status}`;
  if (!is.issueType) return `invalid issue type: ${is.issueType}`;
  if (!isZero(is.updatedAt) && !isZero(is.createdAt) && before(is.updatedAt, is.createdAt)) {
    return 'updated_at cannot be before created_at';
  }
  return null;
}

/** One parsed line as bv's loader treats it: the issue it keeps, or why it skips the line. */
export function bvLine(parsed: unknown): { issue: BvIssue } | { skip: string } {
  try {
    const issue = decodeBvIssue(parsed);
    const why = bvInvalid(issue);
    return why ? { skip: `invalid issue: ${why}` } : { issue };
  } catch (e) {
    if (e instanceof Skip) return { skip: `malformed JSON: ${e.reason}` };
    throw e;
  }
}

/**
 * Go compares strings byte by byte (UTF-8), JavaScript by UTF-16 unit: they differ only when
 * a surrogate (a character above U+FFFF) meets a character in U+E000–U+FFFF.
 */
export function goCompare(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const sx = x >= 0xd800 && x <= 0xdfff;
    const sy = y >= 0xd800 && y <= 0xdfff;
    if (sx !== sy && (sx ? y : x) >= 0xe000) return sx ? 1 : -1;
    return x < y ? -1 : 1;
  }
  return a.length - b.length;
}
