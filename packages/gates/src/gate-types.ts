/**
 * The shapes the gates share (a gate's result, the pipeline's report and options), apart from
 * the pipeline so that the gates (beads, format) and the pipeline do not import each other.
 */
import type { Config } from '@wtpool/config';

export type GateName = 'beads' | 'format' | 'build' | 'typecheck' | 'test' | 'deps' | 'setup';
export type GateStatus = 'passed' | 'failed' | 'skipped';

export interface GateResult {
  name: GateName;
  status: GateStatus;
  /** What ran (or why it was skipped). */
  command: string;
  ms: number;
  exitCode?: number;
  /** Output of the gate (always for a failure). */
  output?: string;
  /** Command a human runs, in `cwd`, to see the failure again. */
  reproduce?: string;
  /** The `gates.paths` globs that selected this command, or `default`. */
  for?: string;
}

export interface GateReport {
  mode: 'pre-commit' | 'ci' | 'merge';
  ok: boolean;
  cwd: string;
  gates: GateResult[];
  /** The first gate that failed. */
  failed: GateName | null;
}

export interface PipelineOptions {
  /** The worktree the gates run in (its top directory). */
  cwd: string;
  /** The repository's main checkout (its node_modules/.bin is on PATH too). */
  mainRoot: string;
  config: Config;
  env?: NodeJS.ProcessEnv;
  /** `merge` mode: the range the merge changed (the previous head and the merge commit). */
  range?: { from: string; to: string };
  /** Called when a gate starts (progress output). */
  onGate?: (name: GateName, command: string) => void;
  /** Streams gate output as it arrives (CI logs). */
  onData?: (chunk: string) => void;
}
