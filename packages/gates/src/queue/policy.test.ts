/**
 * The merge queue's decisions (policy.ts) as pure functions: random histories of runs, new
 * commits, drops, retries and deleted branches against a world the queue sees only through
 * facts (heads, what is in the target) and attempt outcomes, checked against what the queue
 * promises (docs/integration.md), read off the history, not off the code. No git, no files:
 * the slow suites keep the real merges, conflicts and restores.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WtpoolError } from '@wtpool/core';
import type { GateName } from '../gate-types.js';
import {
  KEEP_GREEN,
  KEEP_RESULTS,
  addGreen,
  applyResult,
  baseIsCached,
  candidateSource,
  checkRetry,
  decideCandidate,
  forget,
  interruptedResult,
  isGreen,
  keepsMerge,
  logName,
  markDropped,
  outcomeOf,
  promoteDecision,
  resultEvent,
  runExitCode,
  signalExitCode,
  statusCandidates,
  triesCandidates,
  type Attempt,
} from './policy.js';
import type { IntegrationState, MergeResult, ResultStatus } from './types.js';

const TARGET = 'integration';
const BRANCHES = ['pool/wt-1/a', 'pool/wt-2/b', 'feature/c', 'd'];
const GATES: GateName[] = ['format', 'build', 'typecheck', 'test', 'deps', 'setup'];

const empty = (): IntegrationState => ({ current: null, results: [], green: [] });

/** Throws the WtpoolError `fn` throws, or fails. */
function thrown(fn: () => unknown): WtpoolError {
  try {
    fn();
  } catch (e) {
    if (e instanceof WtpoolError) return e;
    throw e;
  }
  throw new Error('expected a WtpoolError');
}

// ---------------------------------------------------------------------------------------------
// A world: branches with heads (`<branch>@<n>`), a target holding the heads merged into it.

type Op =
  | { op: 'commit'; b: number }
  | { op: 'delete'; b: number }
  | { op: 'drop'; b: number }
  | { op: 'retry'; b: number }
  | { op: 'run'; order: number[]; attempts: Attempt[] };

const attemptArb: fc.Arbitrary<Attempt> = fc.oneof(
  fc.constant<Attempt>({ kind: 'conflict' }),
  fc.constantFrom(...GATES).map<Attempt>((gate) => ({ kind: 'prepare-failed', gate })),
  fc.constantFrom(...GATES).map<Attempt>((failed) => ({ kind: 'gates', failed })),
  fc.constant<Attempt>({ kind: 'gates', failed: null }),
  fc.constant<Attempt>({ kind: 'gates', failed: null }),
);
const b = fc.nat({ max: BRANCHES.length - 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: b.map((i) => ({ op: 'commit' as const, b: i })) },
  { weight: 1, arbitrary: b.map((i) => ({ op: 'delete' as const, b: i })) },
  { weight: 1, arbitrary: b.map((i) => ({ op: 'drop' as const, b: i })) },
  { weight: 2, arbitrary: b.map((i) => ({ op: 'retry' as const, b: i })) },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('run' as const),
      order: fc.array(b, { minLength: 1, maxLength: 6 }),
      attempts: fc.array(attemptArb, { minLength: 6, maxLength: 6 }),
    }),
  },
);

/** What happened, in order: the history the properties read. */
type Event =
  | { t: 'commit' | 'delete' | 'drop' | 'retry'; branch: string; head: string | null }
  | { t: 'result'; r: MergeResult; inTarget: boolean };

class World {
  heads = new Map<string, string>();
  n = new Map<string, number>();
  target = new Set<string>();
  state = empty();
  history: Event[] = [];
  clock = 0;
  constructor() {
    for (const br of BRANCHES) this.commit(br, false);
  }
  at = () => new Date(Date.UTC(2026, 0, 1) + ++this.clock * 1000).toISOString();
  commit(branch: string, log = true) {
    const n = (this.n.get(branch) ?? 0) + 1;
    this.n.set(branch, n);
    this.heads.set(branch, `${branch}@${n}`);
    if (log) this.history.push({ t: 'commit', branch, head: this.heads.get(branch)! });
  }

  apply(o: Op) {
    if (o.op === 'run')
      return this.run(
        o.order.map((i) => BRANCHES[i]!),
        o.attempts,
      );
    const branch = BRANCHES[o.b]!;
    const head = this.heads.get(branch) ?? null;
    if (o.op === 'commit') return this.commit(branch);
    this.history.push({ t: o.op, branch, head });
    if (o.op === 'delete') this.heads.delete(branch);
    else if (o.op === 'drop' && head) markDropped(this.state, branch, head, this.at());
    else if (o.op === 'retry') forget(this.state, branch);
  }

  /** One `integrate run` as run.ts/merge.ts do it, with the world's facts and outcomes. */
  run(candidates: string[], attempts: Attempt[]) {
    candidates.forEach((branch, i) => {
      const head = this.heads.get(branch) ?? null;
      const inTarget = head !== null && this.target.has(head);
      const at = this.at();
      const base = { branch, branchHead: head, target: TARGET, at, ms: 0 };
      const d = decideCandidate(this.state, TARGET, { branch, head, inTarget });
      let r: MergeResult;
      if (d.action === 'skip') {
        r = {
          ...base,
          status: 'skipped',
          reason: d.reason,
          ...(d.previous ? { previous: d.previous } : {}),
        };
      } else {
        const outcome = outcomeOf(attempts[i]!);
        const mergedAs = `merge-of-${d.head}-${at}`;
        if (keepsMerge(outcome)) {
          this.target.add(d.head);
          this.target.add(mergedAs);
        }
        r = {
          ...base,
          ...outcome,
          ...(keepsMerge(outcome) ? { mergedAs } : { log: `/logs/${at}.log` }),
        };
      }
      applyResult(this.state, r);
      this.history.push({ t: 'result', r, inTarget });
    });
  }
}

const failed = (s: ResultStatus) => s === 'conflict' || s === 'rejected';
const tried = (s: ResultStatus) => s !== 'skipped';

/** Read off the history before event `i`: why the queue must skip `branch` at `head`, or null. */
function mustSkip(
  history: Event[],
  i: number,
  branch: string,
  head: string | null,
  inTarget: boolean,
) {
  if (head === null) return 'missing';
  if (inTarget) return 'in target';
  let dropped = false;
  let failedHere = false;
  for (const e of history.slice(0, i)) {
    if (e.t === 'retry' && e.branch === branch) {
      dropped = false;
      failedHere = false;
    } else if (e.t === 'drop' && e.branch === branch && e.head !== null) dropped = true;
    else if (e.t === 'result' && e.r.branch === branch && tried(e.r.status)) {
      // The last tried result of the branch decides: a failure at this very head holds it.
      failedHere = failed(e.r.status) && e.r.branchHead === head;
    }
  }
  if (dropped) return 'dropped';
  if (failedHere) return 'held';
  return null;
}

describe('the queue over random histories', () => {
  const histories = fc.array(opArb, { minLength: 1, maxLength: 40 });

  it('tries exactly the candidates that exist, are not in the target, not dropped and not held at this head', () => {
    fc.assert(
      fc.property(histories, (ops) => {
        const w = new World();
        for (const o of ops) w.apply(o);
        w.history.forEach((e, i) => {
          if (e.t !== 'result') return;
          const why = mustSkip(w.history, i, e.r.branch, e.r.branchHead, e.inTarget);
          expect(e.r.status === 'skipped', `${e.r.branch} ${e.r.status}: ${why}`).toBe(
            why !== null,
          );
          if (why === 'held' || why === 'dropped') {
            // A held or dropped branch says how to take it back.
            expect(e.r.reason).toContain(`integrate retry ${e.r.branch}`);
          }
          if (why === 'held') expect(e.r.previous?.head).toBe(e.r.branchHead);
          if (why === 'in target') expect(e.r.reason).toBe(`already in ${TARGET}`);
        });
      }),
      { numRuns: 300 },
    );
  });

  it('the state: held heads are the last failure of each branch since its last kept merge or retry; results and green heads are bounded', () => {
    fc.assert(
      fc.property(histories, (ops) => {
        const w = new World();
        for (const o of ops) w.apply(o);
        for (const branch of BRANCHES) {
          // Independently: the last event that sets or clears the branch's held head.
          let expected: string | null = null;
          for (const e of w.history) {
            if (e.t === 'retry' && e.branch === branch) expected = null;
            if (e.t === 'result' && e.r.branch === branch) {
              if (failed(e.r.status)) expected = e.r.branchHead;
              if (e.r.status === 'kept') expected = null;
            }
          }
          expect(w.state.held?.[branch]?.head ?? null, branch).toBe(expected);
        }
        const results = w.history.filter((e) => e.t === 'result').map((e) => e.r);
        expect(w.state.results).toEqual(results.slice(-KEEP_RESULTS));
        const merged = results.filter((r) => r.status === 'kept').map((r) => r.mergedAs);
        expect(w.state.green.map((g) => g.head)).toEqual(merged.slice(-KEEP_GREEN));
        // Every kept merge's head passed: a promote may move main there.
        for (const head of merged.slice(-KEEP_GREEN))
          expect(isGreen(w.state, TARGET, head!)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('an event is logged for every result but a skip; a new commit on a held branch is tried again', () => {
    fc.assert(
      fc.property(fc.constantFrom(...BRANCHES), attemptArb, (branch, attempt) => {
        const w = new World();
        w.run([branch], [attempt, ...Array<Attempt>(5).fill(attempt)]);
        const first = w.state.results.at(-1)!;
        expect(resultEvent(first) === null).toBe(first.status === 'skipped');
        w.run([branch], Array<Attempt>(6).fill({ kind: 'gates', failed: null }));
        const second = w.state.results.at(-1)!;
        // Held (failed) or already in the target (kept): skipped either way, no event.
        expect(second.status).toBe('skipped');
        expect(resultEvent(second)).toBeNull();
        w.commit(branch);
        w.run([branch], Array<Attempt>(6).fill({ kind: 'gates', failed: null }));
        expect(w.state.results.at(-1)!.status).toBe('kept');
        expect(w.state.held?.[branch]).toBeUndefined();
      }),
    );
  });
});

describe('what an attempt means', () => {
  it('a conflict, a failed preparation step, a failed gate, all passing', () => {
    expect(outcomeOf({ kind: 'conflict' })).toEqual({
      status: 'conflict',
      reason: 'merge conflict',
    });
    expect(outcomeOf({ kind: 'prepare-failed', gate: 'deps' })).toEqual({
      status: 'rejected',
      reason: 'deps failed',
      failedGate: 'deps',
    });
    expect(outcomeOf({ kind: 'gates', failed: 'build' })).toEqual({
      status: 'rejected',
      reason: 'build gate failed',
      failedGate: 'build',
    });
    expect(outcomeOf({ kind: 'gates', failed: null })).toEqual({
      status: 'kept',
      reason: 'gates passed',
    });
  });

  it('only a kept merge stays; everything else is undone', () => {
    fc.assert(
      fc.property(attemptArb, (a) => {
        const o = outcomeOf(a);
        expect(keepsMerge(o)).toBe(a.kind === 'gates' && a.failed === null);
        expect(o.failedGate === undefined).toBe(o.status !== 'rejected');
      }),
    );
  });
});

describe('base first', () => {
  it('a head is checked once: after it passed it is cached, for its target only', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.nat({ max: 300 }).map((n) => `h${n}`),
          { maxLength: 150 },
        ),
        (heads) => {
          const s = empty();
          heads.forEach((h, i) => addGreen(s, TARGET, h, `t${i}`));
          const kept = new Set(heads.slice(-KEEP_GREEN));
          for (const h of heads) {
            expect(baseIsCached(s, TARGET, h)).toBe(kept.has(h));
            expect(baseIsCached(s, 'other', h)).toBe(false);
          }
          expect(s.green.length).toBe(Math.min(heads.length, KEEP_GREEN));
        },
      ),
    );
  });

  it('a red base tries no candidate and the run exits 1', () => {
    expect(triesCandidates({ status: 'red' })).toBe(false);
    expect(triesCandidates({ status: 'green' })).toBe(true);
    expect(triesCandidates({ status: 'cached' })).toBe(true);
    const statuses: ResultStatus[] = ['kept', 'rejected', 'conflict', 'skipped', 'interrupted'];
    fc.assert(
      fc.property(
        fc.constantFrom<'red' | 'green' | 'cached'>('red', 'green', 'cached'),
        fc.array(fc.constantFrom(...statuses), { maxLength: 6 }),
        (base, rs) => {
          const results = rs.map((status) => ({ status }) as MergeResult);
          const bad = base === 'red' || rs.includes('rejected') || rs.includes('conflict');
          expect(runExitCode({ base: { head: 'h', status: base, ms: 0 }, results })).toBe(
            bad ? 1 : 0,
          );
        },
      ),
    );
  });
});

describe('candidates, drop and retry', () => {
  it('exactly one of --branches and --from-pool', () => {
    expect(thrown(() => candidateSource({})).exitCode).toBe(2);
    expect(thrown(() => candidateSource({ branches: [] })).exitCode).toBe(2);
    expect(thrown(() => candidateSource({ branches: ['a'], fromPool: true })).exitCode).toBe(2);
    expect(candidateSource({ fromPool: true })).toBe('pool');
    expect(candidateSource({ branches: ['a'], fromPool: false })).toBe('branches');
  });

  it('a second drop changes nothing; retry forgets a drop and a held head; a retry with nothing to forget is "not found"', () => {
    const s = empty();
    expect(markDropped(s, 'x', 'h1', 't1')).toBe(true);
    expect(markDropped(s, 'x', 'h2', 't2')).toBe(false);
    expect(s.dropped).toEqual({ x: { head: 'h1', at: 't1' } });
    applyResult(s, {
      branch: 'x',
      branchHead: 'h1',
      target: TARGET,
      status: 'rejected',
      reason: 'build gate failed',
      failedGate: 'build',
      at: 't3',
      ms: 1,
    });
    const r = forget(s, 'x');
    expect(r).toMatchObject({
      branch: 'x',
      undropped: true,
      held: { head: 'h1', status: 'rejected', failedGate: 'build' },
    });
    expect(checkRetry(r)).toBe(r);
    expect(s.dropped).toEqual({});
    expect(s.held).toEqual({});
    expect(thrown(() => checkRetry(forget(s, 'x'))).exitCode).toBe(4);
  });

  it('status lists the kept branches that are neither dropped nor in the target, with their owner and held result', () => {
    const s = empty();
    markDropped(s, 'dropped', 'd1', 't');
    s.held = {
      held: { head: 'h1', status: 'conflict', reason: 'merge conflict', at: 't' },
      moved: { head: 'm0', status: 'conflict', reason: 'merge conflict', at: 't' },
    };
    const owner = { agent: 'ag', task: 'task', slot: 'wt-1' };
    const out = statusCandidates(
      s,
      [
        { branch: 'dropped', head: 'd1', inTarget: false },
        { branch: 'merged', head: 'g1', inTarget: true },
        { branch: 'held', head: 'h1', inTarget: false },
        { branch: 'moved', head: 'm1', inTarget: false },
        { branch: 'new', head: 'n1', inTarget: false },
      ],
      new Map([['new', owner]]),
    );
    expect(out).toEqual([
      { branch: 'held', head: 'h1', held: s.held.held },
      { branch: 'moved', head: 'm1' },
      { branch: 'new', head: 'n1', owner },
    ]);
  });
});

describe('promote', () => {
  const facts = fc.record({
    from: fc.constantFrom('a', 'b'),
    head: fc.constantFrom('a', 'b'),
    green: fc.boolean(),
    fastForward: fc.boolean(),
  });

  it('moves only a green head that is a fast-forward; nothing to do when already there', () => {
    fc.assert(
      fc.property(facts, (f) => {
        const args = { target: TARGET, to: 'main', ...f };
        if (f.from === f.head) expect(promoteDecision(args)).toBe('none');
        else if (f.green && f.fastForward) expect(promoteDecision(args)).toBe('move');
        else {
          const e = thrown(() => promoteDecision(args));
          // Not green is a failure (1), fast-forward or not; green but diverged is a conflict (5).
          expect([e.code, e.exitCode]).toEqual(
            f.green ? ['ERR_CONFLICT', 5] : ['ERR_NOT_GREEN', 1],
          );
        }
      }),
    );
  });
});

describe('small parts', () => {
  it('the exit code of a signal; an interrupted run names its pid and restored head', () => {
    expect([signalExitCode('SIGINT'), signalExitCode('SIGTERM'), signalExitCode('SIGHUP')]).toEqual(
      [130, 143, 129],
    );
    const r = interruptedResult(
      {
        target: TARGET,
        branch: 'x',
        prevHead: 'abcdef0123456789',
        worktree: '/wt',
        pid: 42,
        startedAt: 't',
      },
      'now',
    );
    expect(r).toMatchObject({ branch: 'x', status: 'interrupted', branchHead: null, at: 'now' });
    expect(r.reason).toBe('run of pid 42 stopped mid-merge; restored abcdef012345');
    expect(resultEvent(r)).toMatchObject({ branch: 'x', status: 'interrupted' });
  });

  it('a log name is one safe path component for any branch name', () => {
    fc.assert(
      fc.property(fc.string(), (branch) => {
        const name = logName(branch, new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)));
        expect(name).toMatch(/^2026-01-02T03-04-05-006Z-[A-Za-z0-9._-]*\.log$/);
      }),
    );
  });
});
