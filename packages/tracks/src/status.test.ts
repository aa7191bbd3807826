import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { STATUS_FIXTURE as F } from './fixtures.testutil.js';
import { analyze, readIssueFile, readIssueLines, statusMeaning } from '@wtpool/tracks';

const ids = (xs: { id: string }[]) => xs.map((x) => x.id).sort();

describe('statuses: an open string, by meaning or category', () => {
  it('known statuses by meaning, custom ones by category, the rest unknown', () => {
    expect(statusMeaning('hooked')).toBe('in_flight');
    expect(statusMeaning('pinned')).toBe('not_work');
    expect(statusMeaning('blocked')).toBe('waiting');
    expect(statusMeaning('coding', 'wip')).toBe('in_flight');
    expect(statusMeaning('shipped', 'DONE')).toBe('done');
    expect(statusMeaning('icebox', 'frozen')).toBe('waiting');
    expect(statusMeaning('triaged', 'active')).toBe('open');
    expect(statusMeaning('needs_vibes')).toBe('unknown');
    expect(statusMeaning('needs_vibes', 'sideways')).toBe('unknown');
    // a category never overrides a built-in status
    expect(statusMeaning('closed', 'active')).toBe('done');
  });

  it('wip, done, pinned, hooked, tombstone and unknown items are never assigned; unknown ones are listed', async () => {
    const r = await readIssueLines(F.lines, 'statuses.jsonl');
    expect(r.tombstones).toBe(1);
    const plan = await analyzeLines(F.lines);
    const assigned = plan.tracks.flatMap((t) => t.items.map((i) => i.id)).sort();
    expect(assigned).toEqual(F.free);
    expect(ids(plan.in_flight)).toEqual(F.inFlight);
    expect(ids(plan.not_work)).toEqual(F.notWork);
    expect(ids(plan.unknown_status)).toEqual(F.unknown);
    expect(plan.unknown_status[0]!.reason).toBe('unknown status needs_vibes');
    expect(plan.total_actionable).toBe(F.free.length);
    expect(plan.total_blocked).toBe(F.waiting.length);
    // unknown fields are kept, as the export has them
    const open = plan.tracks.flatMap((t) => t.items).find((i) => i.id === 's-open')!;
    expect(open.extra).toEqual({ created_at: '2026-12-01T10:00:00Z', owner: 'ann' });
  });
});

/** The plan of some lines, read through the stdin path (`--file -`). */
async function analyzeLines(lines: string[]) {
  const stdin = Readable.from([Buffer.from(lines.join('\n') + '\n')]);
  const read = await readIssueFile('-', { stdin });
  expect(read.file).toBe('<stdin>');
  expect(read.issues.length).toBe(lines.length - 1);
  return analyze({ repo: null, file: '-', stdin: Readable.from([lines.join('\n')]), commits: 0 });
}
