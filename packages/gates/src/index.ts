// Public surface of @wtpool/gates.
export { runPipeline, formatReport, testsOnCommit } from './pipeline.js';
export type { GateReport, GateResult, GateName, GateStatus, PipelineOptions } from './pipeline.js';
export {
  installHooks,
  uninstallHooks,
  detectHookManager,
  hookStates,
  hookScript,
  listWorktrees,
  HOOK_MARKER,
  HOOK_BLOCK,
} from './install.js';
export type {
  InstallResult,
  UninstallResult,
  WorktreeHookState,
  HookManager,
  HookManagerInfo,
} from './install.js';
export { flushBeads } from './beads.js';
export { checkStagedFormat } from './format.js';
export {
  integrateRun,
  integratePromote,
  integrateStatus,
  recover,
  ensureWorktree,
  integrationDir,
  runExitCode,
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
