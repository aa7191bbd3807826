// Public surface of @wtpool/gates.
export { runPipeline, formatReport, testsOnCommit } from './pipeline.js';
export type { GateReport, GateResult, GateName, GateStatus, PipelineOptions } from './pipeline.js';
export { installHooks, hookStates, hookScript, listWorktrees, HOOK_MARKER } from './install.js';
export type { InstallResult, WorktreeHookState } from './install.js';
export { flushBeads } from './beads.js';
export { checkStagedFormat } from './format.js';
export {
  integrateRun,
  integratePromote,
  integrateStatus,
  recover,
  ensureWorktree,
  integrationDir,
} from './integrate.js';
export type {
  MergeResult,
  RunReport,
  PromoteReport,
  StatusReport,
  IntegrationState,
  RunOptions,
} from './integrate.js';
export { keptBranches } from './candidates.js';
