import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, makeTempRepo, runCli, type TempRepo } from '@wtpool/testkit';
import {
  acquireAssignments,
  recommend,
  type PoolPort,
  type PoolStatusJson,
  type Recommendation,
  type Track,
} from '@wtpool/tracks';

const track = (id: string, priority: number, size: number, later = 0): Track => ({
  track_id: id,
  priority,
  size,
  reason: 'r',
  items: Array.from({ length: size }, (_, k) => ({
    id: `${id}-i${k}`,
    title: 't',
    priority,
    status: 'open',
    type: 'task',
    assignee: '',
    unblocks: [],
    files: [],
    evidence: [],
  })),
  later: Array.from({ length: later }, (_, k) => ({
    id: `${id}-l${k}`,
    title: 't',
    priority,
    status: 'open',
    type: 'task',
    assignee: '',
    waits_on: [],
  })),
  files: [],
  shared_files: [],
});

const status = (
  slots: [string, string, boolean?][],
  size: number,
  max: number,
  queue = 0,
): PoolStatusJson => ({
  pool: { min: 1, max, size },
  slots: slots.map(([id, state, leased]) => ({
    id,
    state,
    ...(leased ? { lease: { agent: 'x' } } : {}),
  })),
  queue: Array.from({ length: queue }, () => ({})),
});

describe('recommend (pure)', () => {
  it('never gives a slot to a track whose items are in flight, assigned or not work', () => {
    const held = (id: string, o: Partial<Track['items'][number]>): Track => {
      const t = track(id, 0, 1);
      Object.assign(t.items[0]!, o);
      return t;
    };
    const r = recommend(
      [
        held('track-H', { status: 'hooked' }),
        held('track-P', { status: 'in_progress' }),
        held('track-S', { assignee: 'emma' }),
        held('track-G', { type: 'agent' }),
        held('track-M', { type: 'molecule' }),
        track('track-W', 3, 1),
      ],
      status(
        [
          ['wt-1', 'ready'],
          ['wt-2', 'ready'],
        ],
        2,
        9,
      ),
      { agentPrefix: 'a' },
    );
    expect(r.assignments.map((a) => a.track)).toEqual(['track-W']);
    expect(r.not_assignable).toEqual(['track-H', 'track-P', 'track-S', 'track-G', 'track-M']);
    const custom = recommend(
      [held('track-X', { type: 'spike' })],
      status([['wt-1', 'ready']], 1, 1),
      {
        nonWorkTypes: ['spike'],
      },
    );
    expect(custom.assignments).toEqual([]);
  });

  const tracks = [
    track('track-C', 2, 1),
    track('track-A', 0, 3, 4),
    track('track-B', 1, 2),
    track('track-D', 3, 5),
  ];

  it('assigns the most urgent tracks to ready slots, then to growth, the rest wait', () => {
    const r = recommend(
      tracks,
      status(
        [
          ['wt-1', 'leased', true],
          ['wt-2', 'ready'],
          ['wt-3', 'ready'],
        ],
        3,
        4,
      ),
    );
    expect(r.free_slots).toBe(2);
    expect(r.growable).toBe(1);
    expect(r.assignments.map((a) => [a.track, a.slot, a.grow])).toEqual([
      ['track-A', 'wt-2', false],
      ['track-B', 'wt-3', false],
      ['track-C', null, true],
    ]);
    expect(r.waiting_for_slot).toEqual(['track-D']);
    expect(r.waiting_on_dependencies).toEqual([{ track: 'track-A', issues: 4 }]);
    expect(r.assignments[0]!.task).toBe('track-a-track-a-i0');
  });

  it('queued waiters take the growth first; broken or provisioning slots are not free', () => {
    const r = recommend(
      tracks,
      status(
        [
          ['wt-1', 'broken'],
          ['wt-2', 'provisioning'],
        ],
        2,
        4,
        1,
      ),
    );
    expect(r.free_slots).toBe(0);
    expect(r.growable).toBe(1);
    expect(r.assignments.map((a) => a.track)).toEqual(['track-A']);
    expect(r.waiting_for_slot).toEqual(['track-B', 'track-C', 'track-D']);
  });

  it('names agents from the prefix and rejects unsafe prefixes', () => {
    const r = recommend(tracks, status([['wt-1', 'ready']], 1, 1), { agentPrefix: 'orch' });
    expect(r.assignments.map((a) => a.agent)).toEqual(['orch-1']);
    expect(() =>
      recommend(tracks, status([['wt-1', 'ready']], 1, 1), { agentPrefix: '../x; rm' }),
    ).toThrow(/invalid agent name/);
  });

  it('--acquire leases each assignment through the port and stops at the first failure', async () => {
    const calls: string[][] = [];
    const port: PoolPort = {
      status: async () => status([], 0, 0),
      acquire: async (agent, task, priority) => {
        calls.push([agent, task, String(priority)]);
        if (calls.length === 2) throw Object.assign(new Error('pool full'), { exitCode: 75 });
        return { slot: 'wt-9', path: '/p', branch: 'b', agent, task };
      },
    };
    const r = recommend(
      tracks,
      status(
        [
          ['wt-1', 'ready'],
          ['wt-2', 'ready'],
          ['wt-3', 'ready'],
        ],
        3,
        3,
      ),
      { agentPrefix: 'a' },
    );
    await expect(acquireAssignments(r, port)).rejects.toThrow(/pool full/);
    expect(calls).toEqual([
      ['a-1', 'track-a-track-a-i0', '0'],
      ['a-2', 'track-b-track-b-i0', '1'],
    ]);
    expect(r.assignments[0]!.lease?.slot).toBe('wt-9');
    expect(r.assignments[1]!.error?.message).toMatch(/pool full/);
    expect(r.assignments[2]!.lease).toBeUndefined();
  });
});

describe('recommend against a real pool (the pool CLI on a temp repository)', () => {
  const TRACKS = path.join(PROJECT_ROOT, 'packages/tracks/bin/tracks.js');
  const POOL = path.join(PROJECT_ROOT, 'packages/pool/bin/pool.js');
  const line = (id: string, priority: number, blockedBy?: string) =>
    JSON.stringify({
      id,
      title: `work ${id}`,
      status: 'open',
      priority,
      issue_type: 'task',
      ...(blockedBy
        ? { dependencies: [{ issue_id: id, depends_on_id: blockedBy, type: 'blocks' }] }
        : {}),
    });
  let repo: TempRepo;
  const tracks = (args: string[]) =>
    runCli(TRACKS, [...args, '--repo', repo.dir], { cwd: repo.dir });
  const poolStatus = async () => {
    const r = await runCli(POOL, ['status', '--json', '--repo', repo.dir], { cwd: repo.dir });
    expect(r.code, r.stderr).toBe(0);
    return r.json<{ slots: { id: string; lease: { agent: string; task: string } | null }[] }>();
  };

  beforeAll(async () => {
    // Three independent tracks (a chain, two single items) for a pool of two slots.
    repo = await makeTempRepo({
      files: {
        '.beads/issues.jsonl': [
          line('api-1', 1),
          line('api-2', 1, 'api-1'),
          line('ui-1', 0),
          line('docs-1', 3),
        ].join('\n'),
        'pool.config.yaml': 'scale:\n  min: 2\n  max: 2\ndeps:\n  strategy: none\n',
      },
    });
    const init = await runCli(POOL, ['init', '--json', '--repo', repo.dir], { cwd: repo.dir });
    expect(init.code, init.stderr).toBe(0);
  });
  afterAll(() => repo.cleanup());

  it('assigns the most urgent tracks to the free slots, then --acquire leases them', async () => {
    const r = await tracks(['recommend', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rec = r.json<{ recommendation: Recommendation }>().recommendation;
    expect(rec).toMatchObject({ free_slots: 2, growable: 0 });
    expect(rec.assignments.map((a) => [a.slot, a.task])).toEqual([
      ['wt-1', 'track-a-ui-1'],
      ['wt-2', 'track-b-api-1'],
    ]);
    expect(rec.waiting_for_slot).toEqual(['track-C']);
    expect(rec.waiting_on_dependencies).toEqual([{ track: 'track-B', issues: 1 }]);
    // Nothing was leased by a plain recommend.
    expect((await poolStatus()).slots.map((s) => s.lease)).toEqual([null, null]);

    const human = await tracks(['recommend']);
    expect(human.stdout).toContain('Assign track-A → wt-1');

    const acq = await tracks(['recommend', '--acquire', '--agent-prefix', 'a', '--json']);
    expect(acq.code, acq.stderr).toBe(0);
    const leased = acq.json<{ recommendation: Recommendation }>().recommendation.assignments;
    expect(leased.map((a) => [a.agent, a.lease?.slot, a.lease?.branch])).toEqual([
      ['a-1', 'wt-1', 'pool/wt-1/track-a-ui-1'],
      ['a-2', 'wt-2', 'pool/wt-2/track-b-api-1'],
    ]);
    const st = await poolStatus();
    expect(st.slots.map((s) => [s.id, s.lease?.agent, s.lease?.task])).toEqual([
      ['wt-1', 'a-1', 'track-a-ui-1'],
      ['wt-2', 'a-2', 'track-b-api-1'],
    ]);
    // With every slot leased, the next recommendation has nowhere to put a track.
    const after = (await tracks(['recommend', '--json'])).json<{
      recommendation: Recommendation;
    }>();
    expect(after.recommendation.assignments).toEqual([]);
    expect(after.recommendation.waiting_for_slot).toEqual(['track-A', 'track-B', 'track-C']);
  });
});
