import { spawn } from 'node:child_process';

export interface CliResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (throws with the output when it is not JSON). */
  json<T = unknown>(): T;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string;
  /** Kill the process after this many ms (default 120 s). */
  timeout?: number;
}

/** Runs a CLI (a compiled JS bin run with node, or any executable) and collects its result. */
export function runCli(bin: string, args: string[], opts: RunOptions = {}): Promise<CliResult> {
  const isJs = /\.(c|m)?js$/.test(bin);
  const cmd = isJs ? process.execPath : bin;
  const argv = isJs ? [bin, ...args] : args;
  return new Promise((resolve, reject) => {
    // Not inherited from the test run: pnpm's INIT_CWD and lifecycle names point at the real
    // checkout; NODE_EXTRA_CA_CERTS costs every Node start ~37 ms where it names a system bundle
    // (D386) and the tests reach no TLS server that needs it (a test that does passes it in env).
    const base = { ...process.env };
    for (const k of Object.keys(base))
      if (k === 'INIT_CWD' || k === 'NODE_EXTRA_CA_CERTS' || k.startsWith('npm_')) delete base[k];
    const child = spawn(cmd, argv, {
      cwd: opts.cwd,
      env: { ...base, CI: '1', FORCE_COLOR: '0', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeout ?? 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code: code ?? 128,
        signal,
        stdout,
        stderr,
        json<T>() {
          try {
            return JSON.parse(stdout) as T;
          } catch {
            throw new Error(`not JSON (exit ${code}):\nstdout: ${stdout}\nstderr: ${stderr}`);
          }
        },
      });
    });
    // A command that exits without reading its input closes the pipe: that is not an error.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}
