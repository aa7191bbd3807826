/**
 * `pool setup --agents` (docs/agents.md, D344): the configuration an agent harness reads, so
 * agents lease slots themselves. Three files of the repository, each merged, never clobbered:
 *
 * - `.mcp.json`: the `worktree-pool` MCP server entry (`pool mcp`), added when absent;
 * - `.claude/settings.json`: Claude Code's WorktreeCreate / WorktreeRemove hook entries
 *   (`pool hook claude-code …`), added beside the hooks already there;
 * - `AGENTS.md`: a marked block on how to lease, heartbeat and release and what the env file
 *   holds; only the text between the markers is ever replaced.
 *
 * Idempotent (a second run changes nothing); `dryRun` computes the same changes and writes none.
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { configError } from '@wtpool/core';
import { resolveRepo, targetDir } from '@wtpool/config';
import { writeFileAtomic } from '@wtpool/lock';
import { detect, type Detected } from './setup.js';

export interface AgentsFile {
  file: string;
  action: 'created' | 'updated' | 'unchanged';
  /** What changed, in a few words. */
  change: string;
  /** The file's content after the change. */
  content: string;
}

export interface AgentsSetupResult {
  root: string;
  dryRun: boolean;
  files: AgentsFile[];
}

export const MCP_SERVER_NAME = 'worktree-pool';
export const AGENTS_BEGIN =
  '<!-- worktree-pool:agents:begin (written by `pool setup --agents`; edits inside are replaced) -->';
export const AGENTS_END = '<!-- worktree-pool:agents:end -->';

/** How the repository runs its installed `pool` bin (no global install assumed). */
export function poolCommand(pm: Detected['packageManager']): string[] {
  if (pm === 'pnpm') return ['pnpm', 'exec', 'pool'];
  if (pm === 'yarn') return ['yarn', 'run', '-s', 'pool'];
  return ['npx', '--no-install', 'pool'];
}

type Json = Record<string, unknown>;

async function readJsonObject(file: string): Promise<{ value: Json; text: string | null }> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return { value: {}, text: null };
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw configError(`${file} is not valid JSON (${(e as Error).message}); nothing was changed`, {
      hint: 'fix the file by hand, then run `pool setup --agents` again',
    });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw configError(`${file} does not hold a JSON object; nothing was changed`);
  return { value: v as Json, text };
}

const obj = (v: unknown): Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {};

/** `.mcp.json`: adds the server entry unless one of that name exists (a user's entry is theirs). */
export function mergeMcp(cur: Json, cmd: string[]): { value: Json; change: string | null } {
  const servers = obj(cur.mcpServers);
  if (MCP_SERVER_NAME in servers) return { value: cur, change: null };
  return {
    value: {
      ...cur,
      mcpServers: {
        ...servers,
        [MCP_SERVER_NAME]: { command: cmd[0], args: [...cmd.slice(1), 'mcp'] },
      },
    },
    change: `MCP server "${MCP_SERVER_NAME}": ${[...cmd, 'mcp'].join(' ')}`,
  };
}

const HOOKS = [
  ['WorktreeCreate', 'worktree-create'],
  ['WorktreeRemove', 'worktree-remove'],
] as const;

/** `.claude/settings.json`: adds each hook entry unless a hook of that event already runs it. */
export function mergeClaudeSettings(
  cur: Json,
  cmd: string[],
): { value: Json; change: string | null } {
  const hooks = { ...obj(cur.hooks) };
  const added: string[] = [];
  for (const [event, sub] of HOOKS) {
    const entries = Array.isArray(hooks[event]) ? [...(hooks[event] as unknown[])] : [];
    const marker = `hook claude-code ${sub}`;
    const present = entries.some((e) =>
      (Array.isArray(obj(e).hooks) ? (obj(e).hooks as unknown[]) : []).some((h) =>
        String(obj(h).command ?? '').includes(marker),
      ),
    );
    if (present) continue;
    entries.push({
      hooks: [{ type: 'command', command: [...cmd, ...marker.split(' ')].join(' ') }],
    });
    hooks[event] = entries;
    added.push(event);
  }
  return added.length
    ? { value: { ...cur, hooks }, change: `Claude Code hooks: ${added.join(', ')}` }
    : { value: cur, change: null };
}

/** The AGENTS.md block: how any agent leases, heartbeats and releases a slot. */
export function agentsBlock(cmd: string[]): string {
  const pool = cmd.join(' ');
  return [
    AGENTS_BEGIN,
    '## Worktree slots (worktree-pool)',
    '',
    'Work in a leased slot of the worktree pool, never in the main checkout: each slot is an isolated',
    'git worktree on its own branch with its own services (database, Redis, ports).',
    '',
    '- **Lease**: the MCP tool `acquire` {agent, task} of the `worktree-pool` server (`.mcp.json`), or',
    `  \`${pool} acquire <agent> <task> --json\`. Work only inside the returned \`path\`. Keep \`slot\` and`,
    '  `token`: every later call needs them. If the pool is full, the call waits in a fair queue.',
    '- **Heartbeat**: the MCP server renews the leases of its session while it is connected. Without it,',
    `  run \`${pool} heartbeat <slot> <agent>\` well within the lease TTL (default 2h). After a restart,`,
    '  the MCP tool `attach` {slot, token} resumes a lease that has not expired yet.',
    '- **Release** when done: the MCP tool `release` {slot, agent, token}, or',
    `  \`${pool} release <slot> <agent>\` (run inside the slot, the token is read from its env file).`,
    '  Commit your work first: a dirty worktree is refused; `force` saves uncommitted files to',
    '  `refs/wtpool/rescue/<slot>/<time>` before releasing. Branches with commits are kept.',
    '- **Env file**: `.env.worktree` in the slot (mode 0600) holds `WORKTREE_ID`, `POOL_STATE_DIR`,',
    '  `WTPOOL_LEASE_TOKEN` and the slot services’ keys (`DATABASE_URL`, `DATABASE_NAME`, `REDIS_URL`,',
    '  `REDIS_DB`, `PORT`, `PORT_RANGE_START`/`END`, …). Load it with `set -a; . ./.env.worktree; set +a`.',
    '- Claude Code sessions started with `--worktree` get their slot from the WorktreeCreate hook',
    '  (`.claude/settings.json`); removing the worktree releases it with rescue.',
    AGENTS_END,
  ].join('\n');
}

/** AGENTS.md with the block put in: replaced between the markers, else appended. */
export function mergeAgentsMd(cur: string | null, block: string): string {
  if (cur === null) return `# Agents\n\n${block}\n`;
  const b = cur.indexOf(AGENTS_BEGIN);
  const e = cur.indexOf(AGENTS_END, b + 1);
  if (b >= 0 && e > b) return cur.slice(0, b) + block + cur.slice(e + AGENTS_END.length);
  return `${cur.replace(/\n*$/, '')}\n\n${block}\n`;
}

export async function setupAgents(
  o: { repo?: string | undefined; dryRun?: boolean } = {},
): Promise<AgentsSetupResult> {
  const root = resolveRepo(targetDir(o.repo)).worktree;
  const cmd = poolCommand((await detect(root)).packageManager);
  const files: AgentsFile[] = [];
  const plan = async (
    rel: string,
    before: string | null,
    after: string,
    change: string | null,
  ): Promise<void> => {
    const file = path.join(root, rel);
    const same = before === after;
    files.push({
      file,
      action: same ? 'unchanged' : before === null ? 'created' : 'updated',
      change: same ? 'nothing to change' : (change ?? 'updated'),
      content: after,
    });
    if (same || o.dryRun) return;
    await fs.mkdir(path.dirname(file), { recursive: true });
    await writeFileAtomic(file, after);
  };
  const json = (v: Json) => JSON.stringify(v, null, 2) + '\n';

  // Read everything first: an invalid file stops the run before anything is written.
  const mcp = await readJsonObject(path.join(root, '.mcp.json'));
  const claude = await readJsonObject(path.join(root, '.claude', 'settings.json'));
  const agentsFile = path.join(root, 'AGENTS.md');
  const agents = existsSync(agentsFile) ? await fs.readFile(agentsFile, 'utf8') : null;

  const m = mergeMcp(mcp.value, cmd);
  await plan(
    '.mcp.json',
    mcp.text,
    m.change ? json(m.value) : (mcp.text ?? json(m.value)),
    m.change,
  );
  const c = mergeClaudeSettings(claude.value, cmd);
  await plan(
    path.join('.claude', 'settings.json'),
    claude.text,
    c.change ? json(c.value) : (claude.text ?? json(c.value)),
    c.change,
  );
  await plan(
    'AGENTS.md',
    agents,
    mergeAgentsMd(agents, agentsBlock(cmd)),
    'the worktree-pool block',
  );
  return { root, dryRun: o.dryRun === true, files };
}

export function formatSetupAgents(r: AgentsSetupResult): string {
  const verb = (a: AgentsFile['action']) =>
    r.dryRun ? { created: 'would create', updated: 'would update', unchanged: 'unchanged' }[a] : a;
  const lines = r.files.map((f) => `${verb(f.action).padEnd(12)} ${f.file}: ${f.change}`);
  if (r.dryRun) {
    for (const f of r.files.filter((x) => x.action !== 'unchanged'))
      lines.push('', `--- ${f.file} (after)`, f.content.replace(/\n$/, ''));
    lines.push('', 'dry run: nothing was written');
  }
  return lines.join('\n');
}
