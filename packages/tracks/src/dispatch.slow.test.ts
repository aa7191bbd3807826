/**
 * `tracks` on a beads export of today's shape, then `tracks dispatch` on a real pool: built
 * bins (`pnpm -s build` first), one real git repository, no services. The repository has only
 * `.beads/beads.jsonl` (what br and bv read): four independent free items beside custom
 * statuses (wip, done), pinned, hooked, tombstone and an unknown status.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, makeTempRepo, runCli, until, type TempRepo } from '@wtpool/testkit';
import { STATUS_FIXTURE as F } from './fixtures.testutil.js';

const BIN = path.join(PROJECT_ROOT, 'packages/tracks/bin/tracks.js');
const POOL = path.join(PROJECT_ROOT, 'packages/pool/bin/pool.js');

interface Plan {
  tracks: { track_id: string; items: { id: string; extra?: Record<string, unknown> }[] }[];
  in_flight: { id: string }[];
  not_work: { id: string }[];
  unknown_status: { id: string; reason: string }[];
}
interface Run {
  track: string;
  agent: string;
  items: string[];
  status: string;
  slot: string | null;
  branch: string | null;
  exitCode: number | null;
  kept: boolean;
  commits: { sha: string; subject: string }[];
  rescueRef: string | null;
}
interface Summary {
  max: number;
  interrupted: boolean;
  tracks: Run[];
  integrate?: { exitCode: number; report: { results: { branch: string; status: string }[] } };
}

/** The agent: records where and when it ran, commits a file named after its items. */
const AGENT = `#!/bin/sh
set -e
log="$1"
echo "start $WTPOOL_TRACK $(date +%s%N) $WORKTREE_ID $WTPOOL_LEASE_TOKEN $(pwd)" >> "$log"
f="done-$(echo "$WTPOOL_ITEMS" | tr , _).txt"
cp "$WTPOOL_ITEMS_FILE" "$f"
git add "$f"
git commit -q --no-verify -m "work on $WTPOOL_ITEMS"
echo "end $WTPOOL_TRACK $(date +%s%N)" >> "$log"
`;

/** An agent that leaves work uncommitted and waits to be stopped. */
const STUCK = `#!/bin/sh
echo "wip $WTPOOL_ITEMS" > "wip-$WTPOOL_ITEMS.txt"
echo "started $WTPOOL_TRACK" >> "$1"
exec sleep 600
`;

let repo: TempRepo;
let text: string;
const tracks = (args: string[], input?: string) =>
  runCli(BIN, args, { cwd: repo.dir, ...(input !== undefined ? { input } : {}) });
const lines = (file: string) =>
  existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];

beforeAll(async () => {
  text = F.lines.join('\n') + '\n';
  repo = await makeTempRepo({
    files: {
      'README.md': '# r\n',
      '.beads/beads.jsonl': text,
      // no services, no dependency install; gates that pass without tools
      'pool.config.yaml':
        'scale:\n  min: 0\n  max: 2\ndeps:\n  strategy: none\ngates:\n  format: "true"\n  build: "test -f README.md"\n  test: "true"\n',
    },
  });
  for (const [name, body] of [
    ['agent.sh', AGENT],
    ['stuck.sh', STUCK],
  ] as const) {
    writeFileSync(path.join(repo.sandbox, name), body);
    chmodSync(path.join(repo.sandbox, name), 0o755);
  }
});
afterAll(() => repo.cleanup());

const ids = (xs: { id: string }[]) => xs.map((x) => x.id).sort();

describe('reading today’s beads exports', () => {
  it('only .beads/beads.jsonl: read; wip, done, pinned, hooked, tombstone and unknown never assigned; stdin gives the same plan', async () => {
    const r = await tracks(['analyze', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const plan = r.json<Plan>();
    expect(plan.tracks.flatMap((t) => t.items.map((i) => i.id)).sort()).toEqual(F.free);
    expect(ids(plan.in_flight)).toEqual(F.inFlight);
    expect(ids(plan.not_work)).toEqual(F.notWork);
    expect(ids(plan.unknown_status)).toEqual(F.unknown);
    const open = plan.tracks.flatMap((t) => t.items).find((i) => i.id === 's-open')!;
    expect(open.extra).toMatchObject({ owner: 'ann' });
    // the human output names the unknown status
    const human = await tracks(['analyze']);
    expect(human.stdout).toMatch(
      /^Unknown status \(1, never assigned\): 1 unknown status needs_vibes$/m,
    );

    const piped = await tracks(['analyze', '--json', '--file', '-'], text);
    expect(piped.code, piped.stderr).toBe(0);
    const { source: s1, ...a } = plan as Plan & { source: { file: string } };
    const { source: s2, ...b } = piped.json<Plan & { source: { file: string } }>();
    expect(b).toEqual(a);
    expect([s1.file, s2.file]).toEqual([path.join(repo.dir, '.beads/beads.jsonl'), '<stdin>']);
  });
});

describe('tracks dispatch (real pool, scale.max 2)', () => {
  it('--dry-run prints the plan and leases nothing', async () => {
    const r = await tracks(['dispatch', '--dry-run', '--json', '--command', 'false']);
    expect(r.code, r.stderr).toBe(0);
    const doc = r.json<{ max: number; tracks: { items: string[] }[] }>();
    expect(doc.max).toBe(2);
    expect(doc.tracks.flatMap((t) => t.items).sort()).toEqual(F.free);
    expect(existsSync(path.join(repo.dir, '.git/wtpool/state.json'))).toBe(false);
    // no command is a usage error; --help lists the contract's options
    const none = await tracks(['dispatch']);
    expect([none.code, none.stderr.split('\n')[0]]).toEqual([
      2,
      'error: tracks dispatch needs a command',
    ]);
    const help = await tracks(['dispatch', '--help']);
    for (const o of ['--command CMD', '--max N', '--dry-run', '--then STEP', '--file X.jsonl'])
      expect(help.stdout).toContain(o);
  });

  it('4 tracks, never more than 2 at once, each in a leased slot, 4 kept branches, all 4 merged by --then integrate', async () => {
    const log = path.join(repo.sandbox, 'times.log');
    const r = await tracks([
      'dispatch',
      '--json',
      '--then',
      'integrate',
      '--command',
      `${path.join(repo.sandbox, 'agent.sh')} ${log}`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const sum = r.json<Summary>();
    expect(sum.max).toBe(2);
    expect(sum.tracks.map((t) => [t.status, t.exitCode])).toEqual(F.free.map(() => ['ok', 0]));
    expect(sum.tracks.flatMap((t) => t.items).sort()).toEqual(F.free);
    // one line per track on stderr (not a terminal)
    expect(
      r.stderr.split('\n').filter((l) => /^track-[A-D] {2}wt-[12] {2}exit 0/.test(l)),
    ).toHaveLength(4);

    // the recorded timestamps: at most 2 commands at any moment
    const starts = lines(log).filter((l) => l.startsWith('start '));
    const ends = lines(log).filter((l) => l.startsWith('end '));
    expect(starts).toHaveLength(4);
    expect(ends).toHaveLength(4);
    const at = (l: string) => BigInt(l.split(' ')[2]!);
    const marks = [
      ...starts.map((l) => ({ t: at(l), d: 1 })),
      ...ends.map((l) => ({ t: at(l), d: -1 })),
    ].sort((x, y) => (x.t === y.t ? x.d - y.d : x.t < y.t ? -1 : 1));
    let now = 0;
    let most = 0;
    for (const m of marks) most = Math.max(most, (now += m.d));
    expect(most).toBeLessThanOrEqual(2);

    // each ran in the slot its lease granted: slot, token and worktree path from the lease
    const events = lines(path.join(repo.dir, '.git/wtpool/events.jsonl')).map(
      (l) => JSON.parse(l) as { type: string; slot?: string; agent?: string; token?: number },
    );
    for (const s of starts) {
      const [, track, , slot, token, cwd] = s.split(' ');
      const run = sum.tracks.find((t) => t.track === track)!;
      expect(run.slot).toBe(slot);
      expect(cwd).toBe(path.join(`${repo.dir}.worktrees`, slot!));
      expect(
        events.filter(
          (e) =>
            e.type === 'acquire' &&
            e.slot === slot &&
            e.agent === run.agent &&
            e.token === Number(token),
        ),
      ).toHaveLength(1);
    }
    expect(new Set(sum.tracks.map((t) => t.slot))).toEqual(new Set(['wt-1', 'wt-2']));

    // 4 kept branches, one commit each, named after the items
    for (const t of sum.tracks) {
      expect(t.kept).toBe(true);
      expect(t.commits.map((c) => c.subject)).toEqual([`work on ${t.items.join(',')}`]);
      expect(await repo.git(['rev-parse', t.branch!])).toBe(t.commits[0]!.sha);
    }
    // the merge queue took all 4: each file is on the integration branch
    expect(sum.integrate!.exitCode).toBe(0);
    expect(sum.integrate!.report.results.map((x) => x.status)).toEqual([
      'kept',
      'kept',
      'kept',
      'kept',
    ]);
    const tree = (await repo.git(['ls-tree', '--name-only', 'integration'])).split('\n');
    for (const id of F.free) expect(tree).toContain(`done-${id}.txt`);
    // the items file held the items' records, unknown fields included
    const rec = JSON.parse(await repo.git(['show', 'integration:done-s-open.txt'])) as unknown[];
    expect(rec).toMatchObject([{ id: 's-open', owner: 'ann', status: 'open' }]);
  });

  it('SIGINT mid-run: 0 leases afterwards and every uncommitted file in a rescue ref', async () => {
    const log = path.join(repo.sandbox, 'stuck.log');
    const child = spawn(
      process.execPath,
      [BIN, 'dispatch', '--json', '--command', `${path.join(repo.sandbox, 'stuck.sh')} ${log}`],
      { cwd: repo.dir, env: { ...process.env, CI: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await until('both slots running', () => lines(log).length === 2);
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    const sum = JSON.parse(stdout) as Summary;
    expect(sum.interrupted).toBe(true);
    const ran = sum.tracks.filter((t) => t.status !== 'not_started');
    expect(ran.map((t) => t.status)).toEqual(['interrupted', 'interrupted']);
    expect(sum.tracks.filter((t) => t.status === 'not_started')).toHaveLength(2);

    const st = await runCli(POOL, ['status', '--json'], { cwd: repo.dir });
    const status = st.json<{ pool: { leased: number }; slots: { lease: unknown }[] }>();
    expect(status.pool.leased).toBe(0);
    expect(status.slots.filter((s) => s.lease)).toEqual([]);
    for (const t of ran) {
      expect(t.rescueRef).toMatch(/^refs\/wtpool\/rescue\//);
      const file = `wip-${t.items.join(',')}.txt`;
      expect(await repo.git(['show', `${t.rescueRef}:${file}`])).toBe(`wip ${t.items.join(',')}`);
    }
  });
});
