export { makeTempRepo, tempDir, PROJECT_ROOT, GIT_ENV } from './repo.js';
export type { TempRepo, TempRepoOptions } from './repo.js';
export { runCli } from './cli.js';
export type { CliResult, RunOptions } from './cli.js';
export { startRedis, startPostgres, freePort, waitForPort } from './services.js';
export type { RedisServer, PostgresServer } from './services.js';
export {
  startRedisProcess,
  startSentinelTopology,
  redisCli,
  selfSignedCert,
  startTlsRedisProcess,
} from './redis-sentinel.js';
export type { RedisProcess, SentinelTopology } from './redis-sentinel.js';
export { until, jitter } from './wait.js';
export type { UntilOptions } from './wait.js';
