/** Test helpers (not compiled into dist, not a test file). */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { resolveRepo } from '@wtpool/config';
import { PROJECT_ROOT } from '@wtpool/testkit';
import type { Issue } from '@wtpool/tracks';

export function issue(id: string, deps: [string, string][] = [], o: Partial<Issue> = {}): Issue {
  return {
    id,
    title: `title ${id}`,
    status: 'open',
    priority: 2,
    issueType: 'task',
    labels: [],
    deps: deps.map(([type, target]) => ({ type, target })),
    text: {},
    metadataFiles: [],
    ephemeral: false,
    ...o,
  };
}

// shared/ sits beside the repository's main checkout (CI: a fresh clone; here: beside a worktree's main).
const candidates = [PROJECT_ROOT, resolveRepo(PROJECT_ROOT).mainRoot].map((r) =>
  path.resolve(r, '../shared/fixtures/beads'),
);
const found = candidates.find((c) => existsSync(c));
if (!found) throw new Error(`beads fixtures missing: looked in ${candidates.join(', ')}`);
export const FIXTURES: string = found;
