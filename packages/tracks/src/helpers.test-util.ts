/** Test helpers (not compiled into dist, not a test file). */
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
