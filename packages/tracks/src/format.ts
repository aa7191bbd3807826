/** Human output: plans that read like plans. JSON output is the data structures themselves. */
import type { Analysis } from './analyze.js';
import type { BvPlan } from './bv.js';
import type { Recommendation } from './recommend.js';
import type { Conflict, Track } from './tracks.js';

const list = (xs: string[], max = 6) =>
  xs.slice(0, max).join(', ') + (xs.length > max ? `, … (${xs.length} in all)` : '');

function trackText(t: Track): string[] {
  const lines = [
    `${t.track_id} · P${t.priority} · ${t.size} item${t.size === 1 ? '' : 's'} now · ${t.reason}`,
  ];
  t.items.forEach((i, k) => {
    const unblocks = i.unblocks.length ? `  → unblocks ${list(i.unblocks, 4)}` : '';
    lines.push(
      `  ${String(k + 1).padStart(2)}. ${i.id}  P${i.priority} ${i.type}  ${i.title}${unblocks}`,
    );
  });
  if (t.later.length)
    lines.push(
      `      then ${t.later.length} waiting on dependencies: ${list(t.later.map((l) => l.id))}`,
    );
  if (t.files.length) lines.push(`      files: ${list(t.files)}`);
  return lines;
}

export function warningLines(a: Analysis): string[] {
  const w = a.warnings;
  const out: string[] = [];
  if (w.malformed.length) {
    out.push(
      `${w.malformed.length} malformed line(s) skipped: ${list(
        w.malformed.map((m) => `line ${m.line}: ${m.message}`),
        3,
      )}`,
    );
  }
  if (w.dangling.length) {
    out.push(
      `${w.dangling.length} dependency target(s) missing from the file: ${list(
        w.dangling.map((d) => `${d.issue} → ${d.target}`),
        3,
      )}`,
    );
  }
  for (const c of w.cycles) out.push(`dependency cycle: ${c.join(' → ')}`);
  if (a.stranded.length)
    out.push(
      `${a.stranded.length} open issue(s) in no track (cycle or deferred): ${list(a.stranded.map((s) => s.id))}`,
    );
  return out;
}

export function analysisText(a: Analysis): string {
  const lines = [
    `${a.total_actionable} actionable and ${a.total_blocked} blocked issue(s) in ${a.tracks.length} independent track(s)  (${a.source.file})`,
    '',
  ];
  for (const t of a.tracks) lines.push(...trackText(t), '');
  if (!a.tracks.length) lines.push('Nothing to do: no open, unblocked issue.', '');
  if (a.conflicts.length)
    lines.push(
      `${a.conflicts.length} pair(s) of tracks may touch the same files: see \`tracks conflicts\``,
    );
  return lines.join('\n').trimEnd();
}

export function bvText(p: BvPlan): string {
  const lines = [
    `${p.total_actionable} actionable, ${p.total_blocked} blocked, ${p.tracks.length} track(s) (bv --robot-plan)`,
  ];
  for (const t of p.tracks)
    lines.push(
      `${t.track_id} (${t.reason}): ${list(
        t.items.map((i) => i.id),
        10,
      )}`,
    );
  if (p.summary.highest_impact)
    lines.push(`highest impact: ${p.summary.highest_impact} (${p.summary.impact_reason})`);
  return lines.join('\n');
}

export function conflictsText(conflicts: Conflict[]): string {
  if (!conflicts.length) return 'No two tracks are expected to touch the same file.';
  const lines: string[] = [];
  for (const c of conflicts) {
    lines.push(`${c.tracks[0]} ↔ ${c.tracks[1]}: ${c.files.length} shared file(s)`);
    for (const f of c.files) {
      const ev = f.evidence.map(
        (e) =>
          `${e.track}/${e.issue} (${e.how.map((h) => (h.kind === 'text' ? h.field : h.kind === 'commit' ? `commit ${h.commit.slice(0, 8)}` : 'metadata.files')).join(', ')})`,
      );
      lines.push(`  ${f.file}: ${ev.join('; ')}`);
    }
  }
  return lines.join('\n');
}

export function recommendationText(r: Recommendation, acquired = false): string {
  const lines = [`${r.free_slots} free slot(s), room to grow by ${r.growable}`];
  for (const a of r.assignments) {
    const where = a.lease ? a.lease.slot : (a.slot ?? 'a new slot (the pool grows)');
    const verb = acquired ? (a.lease ? 'Leased' : a.error ? 'Failed' : 'Not leased') : 'Assign';
    lines.push(
      `${verb} ${a.track} → ${where}  (P${a.priority}, ${a.size} item(s), task ${a.task}${a.agent ? `, agent ${a.agent}` : ''})${a.lease ? `  ${a.lease.path}` : ''}${a.error ? `: ${a.error.message}` : ''}`,
    );
  }
  if (!r.assignments.length) lines.push('No slot available: every track waits.');
  if (r.waiting_for_slot.length) lines.push(`Waiting for a slot: ${list(r.waiting_for_slot, 10)}`);
  if (r.waiting_on_dependencies.length) {
    lines.push(
      `Waiting on dependencies (follow in the same slot): ${list(
        r.waiting_on_dependencies.map((w) => `${w.track} (${w.issues})`),
        10,
      )}`,
    );
  }
  return lines.join('\n');
}
