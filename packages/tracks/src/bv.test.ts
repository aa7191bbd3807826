import { describe, expect, it } from 'vitest';
import { buildGraph, bvPlan, trackName } from '@wtpool/tracks';
import { issue } from './fixtures.testutil.js';

describe('--format bv follows bv --robot-plan', () => {
  it('names tracks A…Z, AA…', () => {
    expect([1, 2, 26, 27, 28, 52, 53, 702, 703].map(trackName)).toEqual([
      'track-A',
      'track-B',
      'track-Z',
      'track-AA',
      'track-AB',
      'track-AZ',
      'track-BA',
      'track-ZZ',
      'track-AAA',
    ]);
  });

  it('components over all issues (closed ones too), actionable items by priority then id', () => {
    // x-1 and x-2 are joined through the closed x-3; y-1 stands alone; z-2 is blocked by z-1.
    const g = buildGraph([
      issue('x-2', [['blocks', 'x-3']], { priority: 1 }),
      issue('x-1', [['related', 'y-1']], { priority: 3 }),
      issue('x-3', [['blocks', 'x-1']], { status: 'closed' }),
      issue('y-1'),
      issue('z-1', [], { priority: 0 }),
      issue('z-2', [['blocks', 'z-1']]),
    ]);
    const p = bvPlan(g);
    expect(p.tracks.map((t) => [t.track_id, t.reason, t.items.map((i) => i.id)])).toEqual([
      ['track-A', 'Independent work stream', ['x-2', 'x-1']],
      ['track-B', 'Single actionable item', ['y-1']],
      ['track-C', 'Single actionable item', ['z-1']],
    ]);
    expect(p.total_actionable).toBe(4);
    expect(p.total_blocked).toBe(1);
    expect(p.tracks[2]!.items[0]!.unblocks).toEqual(['z-2']);
    expect(p.summary).toEqual({
      highest_impact: 'z-1',
      impact_reason: 'Unblocks 1 task',
      unblocks_count: 1,
    });
  });

  it('parent-child joins a component; a child of a blocked epic is blocked; one component says so', () => {
    const g = buildGraph([
      issue('e-1', [['blocks', 'b-1']], { issueType: 'epic' }),
      issue('e-1.1', [['parent-child', 'e-1']]),
      issue('b-1'),
      issue('b-2', [['parent-child', 'b-1']]),
    ]);
    expect(g.issues.map((is, i) => [is.id, g.actionable[i]])).toEqual([
      ['e-1', false],
      ['e-1.1', false],
      ['b-1', true],
      ['b-2', true],
    ]);
    const p = bvPlan(g);
    expect(p.tracks).toHaveLength(1);
    expect(p.tracks[0]!.reason).toBe('All issues in connected graph');
    // closing b-1 makes e-1 actionable; e-1.1 follows through its parent, not directly
    expect(p.tracks[0]!.items.find((i) => i.id === 'b-1')!.unblocks).toEqual(['e-1']);
  });

  it('an issue blocked twice is unblocked by neither alone; dangling targets do not block', () => {
    const g = buildGraph([
      issue('a'),
      issue('b'),
      issue('c', [
        ['blocks', 'a'],
        ['blocks', 'b'],
      ]),
      issue('d', [
        ['blocks', 'gone-1'],
        ['waits-for', 'a'],
      ]),
    ]);
    const p = bvPlan(g);
    expect(p.tracks.flatMap((t) => t.items.map((i) => [i.id, i.unblocks]))).toEqual([
      ['a', ['d']],
      ['b', []],
    ]);
    expect(g.dangling).toEqual([{ issue: 'd', target: 'gone-1', type: 'blocks' }]);
  });

  it('no actionable issue: empty plan with an empty summary', () => {
    const p = bvPlan(buildGraph([issue('a', [], { status: 'closed' })]));
    expect(p).toEqual({
      tracks: [],
      total_actionable: 0,
      total_blocked: 0,
      summary: { highest_impact: '', impact_reason: '', unblocks_count: 0 },
    });
  });

  it('detects dependency cycles among open issues', () => {
    const g = buildGraph([
      issue('a', [['blocks', 'c']]),
      issue('b', [['blocks', 'a']]),
      issue('c', [['waits-for', 'b']]),
      issue('d'),
    ]);
    expect(g.cycles).toEqual([['a', 'b', 'c']]);
    expect(bvPlan(g).tracks.map((t) => t.items.map((i) => i.id))).toEqual([['d']]);
  });
});
