/**
 * The `pool` commands agents' harnesses call (docs/agents.md): the MCP server on stdio and
 * Claude Code's WorktreeCreate / WorktreeRemove hooks. Logic lives in mcp.ts and
 * hook-claude-code.ts; this file only wires argv to them.
 */
import { ExitCode, isWtpoolError, redact, type CommandSpec } from '@wtpool/core';

export const AGENT_COMMANDS: CommandSpec[] = [
  {
    name: 'mcp',
    summary:
      'MCP server on stdio for agents: acquire, release, heartbeat, status, logs, rescue_list, attach (docs/agents.md)',
    description:
      "Tools mirror the CLI (same fields, checks and --json documents; errors carry the CLI's exit code). The server heartbeats the leases its session acquired or attached while the client is connected; when the session ends they expire after their TTL (then reclaimed with rescue) unless a new session attaches them. Only protocol on stdout; logs on stderr.",
    async run(ctx) {
      const { serveMcp } = await import('./mcp.js');
      await serveMcp({ repo: ctx.repo, config: ctx.config });
    },
  },
  {
    name: 'hook claude-code worktree-create',
    summary:
      "Claude Code's WorktreeCreate hook: lease a slot for the session (JSON payload on stdin); prints only its absolute path",
    description:
      'Reads session_id, cwd and name (or worktree_name) from the payload. The lease has no heartbeat: its TTL is WTPOOL_HOOK_TTL (default 24h); it ends with worktree-remove, or after the TTL (reclaimed with rescue). Waits at most WTPOOL_HOOK_TIMEOUT (default 60s) for a free slot, then exits 75 with one line on stderr. docs/agents.md',
    async run(ctx) {
      return hookCommand(async (h, p) => {
        const lease = await h.worktreeCreate(p, { repo: ctx.repo, config: ctx.config });
        process.stderr.write(
          `leased ${lease.slot} (${lease.branch}, token ${lease.token}) until ${lease.expiresAt}\n`,
        );
        process.stdout.write(lease.path + '\n');
      });
    },
  },
  {
    name: 'hook claude-code worktree-remove',
    summary:
      "Claude Code's WorktreeRemove hook: release the session's slot at worktree_path, saving uncommitted work to a rescue ref",
    async run(ctx) {
      return hookCommand(async (h, p) => {
        const r = await h.worktreeRemove(p, { repo: ctx.repo, config: ctx.config });
        process.stderr.write(h.describeRemove(r) + '\n');
      });
    },
  },
];

/** A Claude Code hook: payload from stdin, nothing on stdout but what the hook contract asks, any error as one line. */
async function hookCommand(
  fn: (
    h: typeof import('./hook-claude-code.js'),
    payload: import('./hook-claude-code.js').HookPayload,
  ) => Promise<void>,
): Promise<number> {
  console.log = console.error;
  try {
    const h = await import('./hook-claude-code.js');
    await fn(h, h.parsePayload(await h.readStdin()));
    return ExitCode.OK;
  } catch (e) {
    if (!isWtpoolError(e)) throw e;
    process.stderr.write(`error: ${redact(e.message)}${e.hint ? ` (${redact(e.hint)})` : ''}\n`);
    return e.exitCode;
  }
}
