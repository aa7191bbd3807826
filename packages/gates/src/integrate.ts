/**
 * The local merge queue (docs/integration.md). `run` first checks the target head itself (base
 * first: `gates ci` once per commit, cached; a red base stops the run and blames nobody), then
 * merges candidate branches one by one (`--no-ff`) into the integration branch, in a worktree of
 * its own, and checks each merge in proportion to what it changed. What passes is kept, what
 * fails is undone (the previous head restored) and recorded as rejected with its log; a
 * conflicting or rejected head is remembered and not retried until the branch moves (or
 * `integrate retry`). `promote` fast-forwards main only to an integration head that passed.
 *
 * The code lives in `queue/`: a pure decision core (policy.ts) and thin effectful modules
 * around it (merge, restore, progress, promote, status, store, worktree). This module is the
 * queue's public surface; its names are stable (`tracks dispatch --then integrate` calls
 * `integrateRun(loaded, { fromPool: true })`).
 */
export { integrateRun } from './queue/run.js';
export { integratePromote } from './queue/promote.js';
export { integrateStatus, integrateDrop, integrateRetry } from './queue/status.js';
export { recover } from './queue/restore.js';
export { ensureWorktree } from './queue/worktree.js';
export { integrationDir } from './queue/store.js';
export { runExitCode } from './queue/policy.js';
export type {
  BaseCheck,
  DropReport,
  Held,
  InProgress,
  IntegrationState,
  MergeResult,
  PromoteReport,
  ResultStatus,
  RetryReport,
  RunOptions,
  RunReport,
  Running,
  StatusReport,
} from './queue/types.js';
