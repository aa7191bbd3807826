/**
 * `pnpm bench mcp`: an acquire + release round trip through one live `pool mcp` session (the
 * official client over stdio, tool calls only: no process start per call) against the same
 * cycle through the CLI (`pool acquire --no-wait --json` + `pool release --token N`, two
 * processes), on the same repository (200 files, one slot, warm). Interleaved; medians.
 * Goal (issue 23): ≤ 0.2×.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { GIT_ENV as TEST_GIT_ENV } from '@wtpool/testkit';
import { fmtMs, interleave, median, percentile, report, scratch } from './harness.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'packages/pool/bin/pool.js');
const GIT_ENV = { ...process.env, ...TEST_GIT_ENV };
const ROUNDS = Number(process.env.WTPOOL_BENCH_MCP_ROUNDS ?? 20);

function pool(args: string[]): string {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: GIT_ENV });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
}

export async function run(): Promise<void> {
  const root = scratch('mcp');
  try {
    const dir = path.join(root, 'repo');
    execFileSync('git', ['init', '-q', '-b', 'main', dir], { env: GIT_ENV });
    for (let i = 0; i < 200; i++)
      writeFileSync(path.join(dir, `f${i}.txt`), `file ${i}\n`.repeat(20));
    writeFileSync(path.join(dir, 'pool.config.yaml'), 'scale:\n  min: 1\n  max: 1\n');
    execFileSync('git', ['add', '-A'], { cwd: dir, env: GIT_ENV });
    execFileSync('git', ['commit', '-q', '-m', 'init'], { cwd: dir, env: GIT_ENV });
    pool(['init', '--repo', dir]);

    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(GIT_ENV)) if (v !== undefined) env[k] = v;
    const client = new Client({ name: 'bench', version: '1.0.0' });
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [BIN, 'mcp', '--repo', dir],
        env,
        stderr: 'ignore',
      }),
    );
    const call = async (name: string, args: Record<string, unknown>) => {
      const r = await client.callTool({ name, arguments: args });
      if (r.isError) throw new Error(JSON.stringify(r.content));
      return r.structuredContent as { slot: string; token: number };
    };
    try {
      const samples = await interleave(ROUNDS, {
        mcp: async () => {
          const l = await call('acquire', { agent: 'bench', task: 'bench', wait: false });
          await call('release', { slot: l.slot, agent: 'bench', token: l.token });
        },
        cli: () => {
          const l = JSON.parse(
            pool(['acquire', 'bench', 'bench', '--no-wait', '--json', '--repo', dir]),
          ) as { slot: string; token: number };
          pool(['release', l.slot, 'bench', '--token', String(l.token), '--repo', dir]);
        },
      });
      const m = median(samples.mcp!);
      const c = median(samples.cli!);
      report(`pool mcp: acquire + release round trip (${ROUNDS} rounds, interleaved)`, [
        {
          what: 'one live MCP session: `acquire` + `release` tool calls, p50',
          value: fmtMs(m),
          baseline: `CLI \`pool acquire\` + \`pool release\` (two processes), p50 ${fmtMs(c)}`,
          ratio: m / c,
          goal: '≤ 0.2×',
        },
        {
          what: 'one live MCP session, p90',
          value: fmtMs(percentile(samples.mcp!, 90)),
          baseline: `CLI, p90 ${fmtMs(percentile(samples.cli!, 90))}`,
          ratio: percentile(samples.mcp!, 90) / percentile(samples.cli!, 90),
        },
      ]);
    } finally {
      await client.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
