/** Test helpers (not compiled into dist, not a test file). */
import path from 'node:path';
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
    assignee: '',
    wispType: '',
    ...o,
  };
}

// Real beads files, copied into the repository (their sources and licences: test/fixtures/beads/README.md).
export const FIXTURES: string = path.join(PROJECT_ROOT, 'packages/tracks/test/fixtures/beads');
