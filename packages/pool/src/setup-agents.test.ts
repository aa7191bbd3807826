import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isWtpoolError } from '@wtpool/core';
import { makeTempRepo, type TempRepo } from '@wtpool/testkit';
import { AGENTS_BEGIN, AGENTS_END, setupAgents } from './setup-agents.js';

const repos: TempRepo[] = [];
afterEach(async () => {
  await Promise.all(repos.splice(0).map((r) => r.cleanup()));
});

async function repoWith(files: Record<string, string>) {
  const repo = await makeTempRepo({ files: { 'README.md': '# r\n', ...files } });
  repos.push(repo);
  return repo;
}
const read = (repo: TempRepo, rel: string) => fs.readFile(path.join(repo.dir, rel), 'utf8');

describe('pool setup --agents', () => {
  it('merges into existing settings and AGENTS.md, never clobbering; idempotent; --dry-run writes nothing', async () => {
    const settings = {
      permissions: { allow: ['Bash(ls)'] },
      hooks: {
        PreToolUse: [{ matcher: 'Bash', hooks: [{ type: 'command', command: 'echo hi' }] }],
        WorktreeCreate: [{ hooks: [{ type: 'command', command: './my-own-setup.sh' }] }],
      },
    };
    const mcp = { mcpServers: { other: { command: 'other-server' } } };
    const agentsMd = `# Our agents\n\nBe kind.\n\n${AGENTS_BEGIN}\nold text\n${AGENTS_END}\n\nTrailer.\n`;
    const repo = await repoWith({
      'package.json': JSON.stringify({ name: 'x', packageManager: 'pnpm@10.0.0' }),
      '.claude/settings.json': JSON.stringify(settings),
      '.mcp.json': JSON.stringify(mcp),
      'AGENTS.md': agentsMd,
    });
    const before = await Promise.all(
      ['.claude/settings.json', '.mcp.json', 'AGENTS.md'].map((f) => read(repo, f)),
    );

    const dry = await setupAgents({ repo: repo.dir, dryRun: true });
    expect(dry.files.map((f) => f.action)).toEqual(['updated', 'updated', 'updated']);
    const untouched = await Promise.all(
      ['.claude/settings.json', '.mcp.json', 'AGENTS.md'].map((f) => read(repo, f)),
    );
    expect(untouched).toEqual(before);

    const r = await setupAgents({ repo: repo.dir });
    expect(r.files.map((f) => f.action)).toEqual(['updated', 'updated', 'updated']);
    expect(r.files.map((f) => f.content)).toEqual(dry.files.map((f) => f.content));

    const m = JSON.parse(await read(repo, '.mcp.json'));
    expect(m.mcpServers.other).toEqual({ command: 'other-server' });
    expect(m.mcpServers['worktree-pool']).toEqual({
      command: 'pnpm',
      args: ['exec', 'pool', 'mcp'],
    });

    const s = JSON.parse(await read(repo, '.claude/settings.json'));
    expect(s.permissions).toEqual(settings.permissions);
    expect(s.hooks.PreToolUse).toEqual(settings.hooks.PreToolUse);
    expect(s.hooks.WorktreeCreate).toEqual([
      settings.hooks.WorktreeCreate[0],
      { hooks: [{ type: 'command', command: 'pnpm exec pool hook claude-code worktree-create' }] },
    ]);
    expect(s.hooks.WorktreeRemove).toEqual([
      { hooks: [{ type: 'command', command: 'pnpm exec pool hook claude-code worktree-remove' }] },
    ]);

    const md = await read(repo, 'AGENTS.md');
    expect(md.startsWith('# Our agents\n\nBe kind.\n\n')).toBe(true);
    expect(md.endsWith('\n\nTrailer.\n')).toBe(true);
    expect(md).not.toContain('old text');
    expect(md.split(AGENTS_BEGIN)).toHaveLength(2);
    expect(md).toContain('WTPOOL_LEASE_TOKEN');

    const again = await setupAgents({ repo: repo.dir });
    expect(again.files.map((f) => f.action)).toEqual(['unchanged', 'unchanged', 'unchanged']);
    expect(await read(repo, 'AGENTS.md')).toBe(md);
  });

  it('creates the files in a bare repository (npx when there is no pnpm or yarn); an invalid JSON file stops it before anything is written', async () => {
    const repo = await repoWith({});
    const r = await setupAgents({ repo: repo.dir });
    expect(r.files.map((f) => f.action)).toEqual(['created', 'created', 'created']);
    expect(JSON.parse(await read(repo, '.mcp.json')).mcpServers['worktree-pool']).toEqual({
      command: 'npx',
      args: ['--no-install', 'pool', 'mcp'],
    });

    const broken = await repoWith({ '.claude/settings.json': '{ "hooks": ' });
    const e = await setupAgents({ repo: broken.dir }).catch((x: unknown) => x);
    expect(isWtpoolError(e) && e.exitCode).toBe(3);
    expect(existsSync(path.join(broken.dir, '.mcp.json'))).toBe(false);
    expect(existsSync(path.join(broken.dir, 'AGENTS.md'))).toBe(false);
    expect(await read(broken, '.claude/settings.json')).toBe('{ "hooks": ');
  });
});
