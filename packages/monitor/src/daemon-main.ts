/**
 * The daemon process started by `monitor start` (not a user command): samples every interval
 * until SIGTERM/SIGINT. It ignores SIGHUP, so closing the terminal does not stop it.
 */
import { loadConfig } from '@wtpool/config';
import { appendLog, daemonPaths, sampleEntries } from './daemon.js';
import { collectHealth } from './health.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
}

const loaded = loadConfig({ repo: arg('repo'), config: arg('config') });
const intervalMs = Number(arg('interval') ?? loaded.config.monitor.interval);
const { log } = daemonPaths(loaded);
let stopping = false;
let wake: (() => void) | undefined;
const stop = () => {
  stopping = true;
  wake?.();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('SIGHUP', () => {});

let prev = new Set<string>();
while (!stopping) {
  try {
    const { entries, keys } = sampleEntries(await collectHealth(loaded), prev);
    prev = keys;
    await appendLog(log, entries);
  } catch (e) {
    await appendLog(log, [
      { type: 'error', at: new Date().toISOString(), message: (e as Error).message },
    ]).catch(() => {});
  }
  if (stopping) break;
  await new Promise<void>((r) => {
    wake = r;
    setTimeout(r, intervalMs);
  });
}
