/**
 * Progress of a run: one line when a gate starts, a "still running" line every `tick` seconds
 * while it runs, and where the run is in `running.json` (for `integrate status`). That file is
 * written without the state's lock and fsync (temp file + rename): it is only a view of a live
 * process, and a per-gate locked write would cost the queue time on every candidate.
 */
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import type { LoadedConfig } from '@wtpool/config';
import { runningFile } from './store.js';
import type { Running } from './types.js';

export const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

export class Progress {
  private timer: NodeJS.Timeout | null = null;
  private readonly file: string;
  constructor(
    loaded: LoadedConfig,
    private readonly running: Running,
    private readonly print: ((m: string) => void) | undefined,
    private readonly tickMs: number,
  ) {
    this.file = runningFile(loaded);
    this.write();
  }

  private write(): void {
    try {
      const tmp = `${this.file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(this.running) + '\n');
      renameSync(tmp, this.file);
    } catch {
      // progress is best effort: the run's own state writes report real failures
    }
  }

  /** Records where the run is (a new candidate, or the base with index 0). */
  at(patch: Partial<Running>): void {
    this.stop();
    Object.assign(this.running, patch);
    this.write();
  }

  /** A gate starts (synchronous: runPipeline's `onGate`). */
  gate(prefix: string, gate: string, command: string): void {
    this.stop();
    const started = Date.now();
    this.print?.(`${prefix}: ${gate} (${command})…`);
    if (this.print) {
      this.timer = setInterval(
        () => this.print!(`${prefix}: ${gate} still running, ${secs(Date.now() - started)}`),
        this.tickMs,
      );
      this.timer.unref();
    }
    this.running.gate = gate;
    this.running.gateStartedAt = new Date(started).toISOString();
    this.write();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** The run is over. */
  end(): void {
    this.stop();
    rmSync(this.file, { force: true });
  }
}
