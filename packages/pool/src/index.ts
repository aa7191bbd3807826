// Public surface of @wtpool/pool.
export { WorktreePool } from './pool.js';
export type { Reporter } from './pool.js';
export { toStatus, formatStatus } from './status.js';
export { doctor } from './pool.js';
export type { LeaseStore } from './lease-store.js';
export { FileLeaseStore } from './file-lease-store.js';
export { RedisLeaseStore } from './redis-lease-store.js';
export { createStore } from './store.js';
export type { DoctorReport, Problem } from './doctor.js';
export { runInSlot } from './run.js';
export { leaseLogPath, readLeaseLog, LEASE_LOG_MAX } from './lease-log.js';
export type { RunResult } from './run.js';
export { readEvents, appendEvent, eventsFile } from './events.js';
export { pidStartTime, procAlive, procRef } from './proc.js';
export { OWNER_MARKER, readOwnerMarker } from './worktree.js';
export { ENV_FILE, writeEnvFile, readEnvFile } from './envfile.js';
export type { OwnerMarker, RefInfo } from './worktree.js';
export type * from './types.js';
// Rescue: one API for saving, listing, showing and restoring work (the monitor's cleanup uses it).
export {
  saveWork,
  scanRemovals,
  limitsOf,
  listRescues,
  showRescue,
  restoreRescue,
  readManifest,
} from './rescue/index.js';
export type {
  RescueLimits,
  RescueOutcome,
  RescueShow,
  RestoreResult,
  Manifest,
} from './rescue/index.js';
// Git helpers the monitor's cleanup reuses (under the pool's git locks).
export {
  removeWorktree,
  listWorktrees,
  deleteBranch,
  commitsAhead,
  isDirty,
  worktreeExists,
} from './worktree.js';
export { withGitLock } from './git.js';
// The fleet, read-only (store.backend redis): every host's heartbeat, registry and leases.
export { readFleetView, asFleetHost } from './fleet-view.js';
export type { FleetView, FleetViewHost, FleetViewSlot } from './fleet-view.js';
