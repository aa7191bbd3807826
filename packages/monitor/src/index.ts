// Public surface of @wtpool/monitor.
export { collectHealth, judge } from './health.js';
export type { Health, PostgresHealth, RedisHealth, PoolHealth, HolderFds } from './health.js';
export { buildReport, formatReport } from './report.js';
export type { Report, SlotReport } from './report.js';
export { formatStatus } from './format.js';
export {
  exitCodeFor,
  worst,
  levelAlert,
  EXIT_WARNING,
  EXIT_ERROR,
  FD_ERROR_PCT,
} from './thresholds.js';
export type { Alert, Level, Thresholds } from './thresholds.js';
export { systemFds, processFds, parseFileNr, parseOpenFilesLimit } from './fd.js';
export type { SystemFds, ProcessFds } from './fd.js';
export {
  measureTree,
  diskUsage,
  freeSpace,
  loadDiskRecords,
  saveDiskRecords,
  primeDiskRecords,
  insideNodeModules,
} from './disk.js';
export type { DiskUsage, DiskCache, DirRecord, TreeMeasure, MeasureOptions } from './disk.js';
export { daemonPaths, daemonStatus, startDaemon, stopDaemon, lastSample } from './daemon.js';
export type { DaemonStatus, DaemonPaths } from './daemon.js';
export { readPoolView } from './pool-view.js';
export type { PoolView, SlotView, LeaseView } from './pool-view.js';
export { detectLeaks, LEAK_KINDS, LOCK_STALE_MS } from './leaks.js';
export type { Leak, LeakKind, LeakReport } from './leaks.js';
export { cleanupLeaks } from './cleanup.js';
export type { CleanupAction, CleanupResult } from './cleanup.js';
