/** Human output: plans that read like plans. JSON output is the data structures themselves. */
import type { Analysis, EvidenceStatus } from './analyze.js';
import type { BvPlan } from './bv.js';
import type { Recommendation } from './recommend.js';
import type { Conflict, HeldItem, Track } from './tracks.js';

const list = (xs: string[], max = 6) =>
  xs.slice(0, max).join(', ') + (xs.length > max ? `, … (${xs.length} in all)` : '');

export interface TextOptions {
  /** Per-item files and why, and every held issue with its reason. */
  explain?: boolean;
}

function trackText(t: Track, o: TextOptions): string[] {
  const lines = [
    `${t.track_id} · P${t.priority} · ${t.size} item${t.size === 1 ? '' : 's'} now · ${t.reason}`,
  ];
  t.items.forEach((i, k) => {
    const unblocks = i.unblocks.length ? `  → unblocks ${list(i.unblocks, 4)}` : '';
    const who = i.assignee ? ` (${i.assignee})` : '';
    lines.push(
      `  ${String(k + 1).padStart(2)}. ${i.id}  P${i.priority} ${i.type} ${i.status}${who}  ${i.title}${unblocks}`,
    );
    if (o.explain) {
      lines.push(
        i.evidence.length
          ? `      files: ${i.evidence.map((e) => `${e.file} (${e.how.join(', ')})`).join('; ')}`
          : '      files: none known',
      );
    }
  });
  if (t.later.length)
    lines.push(
      `      then ${t.later.length} waiting on dependencies: ${list(t.later.map((l) => l.id))}`,
    );
  if (t.files.length) lines.push(`      files: ${list(t.files)}`);
  for (const f of t.shared_files.slice(0, o.explain ? undefined : 3)) {
    lines.push(`      shared: ${f.file} by ${list(f.issues, 4)}`);
  }
  return lines;
}

function heldText(title: string, items: HeldItem[], o: TextOptions): string[] {
  if (!items.length) return [];
  const byReason = new Map<string, number>();
  for (const i of items) {
    const key = i.reason.startsWith('assigned to ') ? 'assigned' : i.reason.split(',')[0]!;
    byReason.set(key, (byReason.get(key) ?? 0) + 1);
  }
  const lines = [
    `${title} (${items.length}, never assigned): ${[...byReason].map(([r, n]) => `${n} ${r}`).join(', ')}`,
  ];
  for (const i of items.slice(0, o.explain ? undefined : 8)) {
    lines.push(
      `  ${i.id}  P${i.priority} ${i.type} ${i.status}${i.assignee ? ` (${i.assignee})` : ''}  ${i.title}  — ${i.reason}`,
    );
  }
  if (!o.explain && items.length > 8)
    lines.push(`  … ${items.length - 8} more (--explain lists all)`);
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
      `${a.stranded.length} open work item(s) in no track (a cycle, deferred, or waiting on in-flight or non-work issues): ${list(a.stranded.map((s) => s.id))}`,
    );
  return out;
}

export function analysisText(a: Analysis, o: TextOptions = {}): string {
  const lines = [
    `${a.total_actionable} actionable and ${a.total_blocked} waiting work item(s) in ${a.tracks.length} independent track(s); ${a.in_flight.length} in flight, ${a.not_work.length} not work${a.unknown_status.length ? `, ${a.unknown_status.length} of unknown status` : ''}  (${a.source.file})`,
    `Evidence: ${a.evidence.note}.`,
    '',
  ];
  for (const t of a.tracks) lines.push(...trackText(t, o), '');
  if (!a.tracks.length) lines.push('Nothing to hand out: no open, free, unblocked work.', '');
  for (const part of [
    heldText('In flight', a.in_flight, o),
    heldText('Not work', a.not_work, o),
    heldText('Unknown status', a.unknown_status, o),
  ]) {
    if (part.length) lines.push(...part, '');
  }
  if (a.conflicts.length)
    lines.push(
      `${a.conflicts.length} pair(s) of tracks may touch the same files: see \`tracks conflicts\``,
    );
  return lines.join('\n').trimEnd();
}

export function bvText(doc: { plan: BvPlan; data_hash?: string }): string {
  const p = doc.plan;
  const tracks = p.tracks ?? [];
  const lines = [
    `${p.total_actionable} actionable, ${p.total_blocked} blocked, ${tracks.length} track(s) (bv --robot-plan${doc.data_hash ? `, data_hash ${doc.data_hash}` : ''})`,
  ];
  for (const t of tracks)
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

export function conflictsText(conflicts: Conflict[], evidence?: EvidenceStatus): string {
  if (!conflicts.length) {
    if (evidence && !evidence.files) {
      return `Conflicts unknown: ${evidence.note}.`;
    }
    if (evidence?.items_without_files) {
      return `No two tracks are expected to touch the same file, as far as the evidence goes: ${evidence.note}.`;
    }
    return 'No two tracks are expected to touch the same file.';
  }
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
  if (r.not_assignable.length) {
    lines.push(`Not assigned (nothing free in them): ${list(r.not_assignable, 10)}`);
  }
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
