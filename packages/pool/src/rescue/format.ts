/** `pool rescue show` for humans: what a rescue holds, nested repositories indented. */
import type { RescueShow } from './show.js';

const MAX_FILES = 50;

function files(title: string, list: string[], pad: string): string[] {
  if (!list.length) return [];
  const shown = list.slice(0, MAX_FILES).map((f) => `${pad}    ${f}`);
  if (list.length > MAX_FILES) shown.push(`${pad}    … and ${list.length - MAX_FILES} more`);
  return [`${pad}  ${title} (${list.length}):`, ...shown];
}

function block(r: RescueShow, pad: string): string[] {
  const lines = [
    `${pad}  HEAD: ${r.branch ? r.branch.replace(/^refs\/heads\//, '') : 'detached'} at ${r.head?.slice(0, 10) ?? '(no commit)'}`,
  ];
  if (r.commits.length) {
    lines.push(`${pad}  commits (${r.commits.length}):`);
    for (const c of r.commits) lines.push(`${pad}    ${c.commit.slice(0, 10)} ${c.subject}`);
  }
  lines.push(
    ...files(
      'dirty files',
      r.dirty.map((d) => `${d.change.padEnd(9)} ${d.path}`),
      pad,
    ),
  );
  lines.push(...files('ignored files', r.ignored, pad));
  lines.push(...files('not saved: over pool.rescueMaxBytes', r.tooLarge, pad));
  lines.push(...files('not saved: discarded nested repositories', r.discarded, pad));
  for (const n of r.nested) {
    lines.push(
      `${pad}  nested repository ${n.path}${n.submodule ? ' (submodule)' : ''}: ${n.ref}`,
      `${pad}    branches: ${n.branches.length ? n.branches.map((b) => b.name).join(', ') : 'none'}`,
      ...block(n, `${pad}  `),
    );
  }
  if (r.unmapped.length)
    lines.push(
      `${pad}  nested repositories (saved before manifests, path unknown): ${r.unmapped.join(', ')}`,
    );
  return lines;
}

export function formatRescue(r: RescueShow): string {
  return [
    `${r.ref}  ${r.commit.slice(0, 10)}  ${r.date}`,
    `  ${r.subject}`,
    ...block(r, ''),
    '',
    `restore it with: pool rescue restore ${r.ref.replace(/^refs\/wtpool\/rescue\//, '')} --into DIR`,
  ].join('\n');
}
