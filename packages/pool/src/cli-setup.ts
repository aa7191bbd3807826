/**
 * `pool setup [--agents] [--dry-run]`: setting a repository up for the pool (setup.ts) and its
 * agents (setup-agents.ts). This file only wires argv to them.
 */
import { askYesNo, canAsk, usageError, type CommandSpec } from '@wtpool/core';

export const SETUP_COMMAND: CommandSpec = {
  name: 'setup',
  summary:
    'set up this repository: commented pool.config.yaml from what it has, root scripts, the gates',
  description:
    'Detects the package manager and its packageManager pin, lockfile, formatter, build script and PostgreSQL/Redis URLs in .env files (redacted when printed), writes pool.config.yaml, adds the pool/gates/monitor/tracks/integrate scripts and runs `gates install`. Idempotent: existing files and scripts are kept unless --force.',
  options: [
    {
      name: 'yes',
      short: 'y',
      type: 'boolean',
      description: 'do not ask (on a terminal setup asks whether to set up agents too)',
    },
    { name: 'force', type: 'boolean', description: 'overwrite pool.config.yaml and scripts' },
    {
      name: 'agents',
      type: 'boolean',
      description:
        'only the agents part: .mcp.json (`pool mcp`), Claude Code hooks in .claude/settings.json, a block in AGENTS.md (merged, idempotent; docs/agents.md)',
    },
    {
      name: 'dry-run',
      type: 'boolean',
      description: 'with --agents: print the changes, write nothing',
    },
  ],
  async run(ctx) {
    const agentsSetup = () => import('./setup-agents.js');
    if (ctx.opts.agents === true) {
      const { setupAgents, formatSetupAgents } = await agentsSetup();
      const a = await setupAgents({ repo: ctx.repo, dryRun: ctx.opts['dry-run'] === true });
      ctx.out.result(a, () => formatSetupAgents(a));
      return 0;
    }
    if (ctx.opts['dry-run'] === true)
      throw usageError('--dry-run goes with --agents', {
        hint: 'pool setup --agents --dry-run',
      });
    const { setup, formatSetup } = await import('./setup.js');
    const r = await setup({ repo: ctx.repo, force: ctx.opts.force === true });
    let agents = '';
    if (!ctx.json && ctx.opts.yes !== true && canAsk()) {
      const q =
        'Let agents lease slots themselves (.mcp.json, Claude Code hooks, an AGENTS.md block)?';
      if (await askYesNo(q)) {
        const m = await agentsSetup();
        agents = m.formatSetupAgents(await m.setupAgents({ repo: ctx.repo }));
      }
    }
    ctx.out.result(r, () => formatSetup(r) + (agents ? `\n${agents}` : ''));
    return r.gates.ok ? 0 : 1;
  },
};
