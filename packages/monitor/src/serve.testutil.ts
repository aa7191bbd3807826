/**
 * Shared by the browser tests of `monitor serve` (serve.slow.test.ts, serve-fleet.slow.test.ts):
 * the server as a real child process, and Debian's headless chromium driven by playwright-core.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { PROJECT_ROOT, tempDir } from '@wtpool/testkit';

const MONITOR = path.join(PROJECT_ROOT, 'packages/monitor/bin/monitor.js');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const HAVE_CHROMIUM = existsSync(CHROMIUM);
if (!HAVE_CHROMIUM)
  console.warn(
    `monitor serve browser test SKIPPED: no chromium at ${CHROMIUM} (scripts/ensure-test-services.sh installs it)`,
  );

export interface Started {
  child: ChildProcess;
  url: string;
  port: number;
  token: string;
}

/** Starts `monitor serve --json` and waits for its one JSON document on stdout. */
export function startServe(repo: string, args: string[]): Promise<Started> {
  const child = spawn(process.execPath, [MONITOR, 'serve', '--json', '--repo', repo, ...args], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CI: '1' },
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      try {
        const doc = JSON.parse(out) as Omit<Started, 'child'>;
        resolve({ child, ...doc });
      } catch {
        // not complete yet
      }
    });
    child.on('exit', (code) => reject(new Error(`monitor serve exited ${code}: ${err}`)));
  });
}

export async function stopServe(s: Started | undefined): Promise<void> {
  if (!s || s.child.exitCode !== null) return;
  const gone = new Promise((r) => s.child.once('exit', r));
  s.child.kill('SIGTERM');
  await gone;
}

/** A headless chromium with its own profile (no sandbox: tests run as root in containers). */
export function launchChromium(): Promise<BrowserContext> {
  return chromium.launchPersistentContext(tempDir('wtpool-chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}
