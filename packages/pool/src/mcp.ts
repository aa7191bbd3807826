/**
 * `pool mcp`: the pool as an MCP server on stdio (official SDK, D340; docs/agents.md). Its tools
 * mirror the CLI: the same names, fields, checks and messages, and the CLI's `--json` documents
 * as structured content. An error is a tool error (`isError`) carrying `{ error, exitCode }`
 * with the exit code the CLI would have exited with (5: a stale token or not the holder, 75:
 * pool full, …). Leases the session acquires or attaches are heartbeaten while it is connected
 * (mcp-keeper.ts). Only protocol messages go to stdout; logs go to stderr.
 */
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { McpServer, type CallToolResult, type ServerContext } from '@modelcontextprotocol/server';
import { StdioServerTransport } from '@modelcontextprotocol/server/stdio';
import * as z from 'zod';
import { checkName, slotId, slotNumber } from '@wtpool/config';
import {
  ExitCode,
  VERSION,
  WtpoolError,
  conflictError,
  isWtpoolError,
  notFoundError,
  parseDuration,
  redact,
  redactDeep,
  usageError,
} from '@wtpool/core';
import { ENV_FILE, readEnvFile } from './envfile.js';
import { fleetDispatch, withHost } from './fleet-cli.js';
import { LeaseKeeper } from './mcp-keeper.js';
import { readLeaseLog } from './lease-log.js';
import { WorktreePool } from './pool.js';

export interface McpOptions {
  repo?: string | undefined;
  config?: string | undefined;
  stdin?: Readable;
  stdout?: Writable;
}

const log = (line: string) => process.stderr.write(`pool mcp: ${redact(line)}\n`);

/** A tool's result: the CLI's `--json` document as structured content and as text. */
function ok(value: object): CallToolResult {
  const doc = redactDeep(JSON.parse(JSON.stringify(value)) as Record<string, unknown>);
  return {
    content: [{ type: 'text', text: JSON.stringify(doc, null, 2) }],
    structuredContent: doc,
  };
}

/** A tool error: what the CLI prints (`error:`/`hint:`) and `{ error, exitCode }` as structured content. */
function fail(e: unknown): CallToolResult {
  const err = isWtpoolError(e)
    ? e
    : new WtpoolError(
        'ERR_INTERNAL',
        ExitCode.FAILURE,
        `internal error: ${e instanceof Error ? e.message : String(e)}`,
      );
  const text = `error: ${redact(err.message)}${err.hint ? `\nhint: ${redact(err.hint)}` : ''}\nexit code: ${err.exitCode}`;
  return {
    content: [{ type: 'text', text }],
    structuredContent: { error: err.toJSON(), exitCode: err.exitCode },
    isError: true,
  };
}

const tool =
  <A>(fn: (args: A, ctx: ServerContext) => Promise<object>) =>
  async (args: A, ctx: ServerContext): Promise<CallToolResult> => {
    try {
      return ok(await fn(args, ctx));
    } catch (e) {
      return fail(e);
    }
  };

/** A duration field: `90s`, `30m`, `2h` or milliseconds, checked like the CLI's `--ttl`/`--timeout`. */
const duration = (v: string | number | undefined, what: string) =>
  v === undefined ? undefined : parseDuration(v, what);

/** A token field: a whole number ≥ 1 (the CLI's `--token N`). */
function token(v: number): number {
  if (!Number.isInteger(v) || v < 1) throw usageError(`token must be a whole number ≥ 1, got ${v}`);
  return v;
}

const DURATION = z.union([z.string(), z.number()]);
const FIELDS = {
  agent: z.string().describe('who leases (letters, digits, . _ @ + -; at most 64)'),
  task: z.string().describe('what for (free text, slugged into the branch name)'),
  slot: z.string().describe('slot id, e.g. wt-3'),
  token: z.number().describe('the lease fencing token (from acquire); a stale one is refused'),
};

/** Builds the server: one McpServer over one WorktreePool, with the session's lease keeper. */
export function createMcpServer(pool: WorktreePool, keeper: LeaseKeeper): McpServer {
  const server = new McpServer(
    { name: 'worktree-pool', version: VERSION },
    {
      instructions:
        'Lease an isolated git worktree slot with `acquire` (work only inside its `path`, with the env of its `envFile`), release it with `release` when done (force: true saves uncommitted work to a rescue ref). This server heartbeats the leases of this session while it is connected; after a restart, `attach` {slot, token} resumes a lease before its TTL runs out.',
    },
  );

  server.registerTool(
    'acquire',
    {
      description:
        'Lease a slot (as `pool acquire --json`). Waits in the fair priority queue unless wait is false; sends progress notifications with the queue position while it waits; cancelling the request leaves the queue. Returns slot, path, branch, token, env, envFile, expiresAt.',
      inputSchema: z.object({
        agent: FIELDS.agent,
        task: FIELDS.task,
        priority: z.number().optional().describe('0 (most urgent) … 4; default 2'),
        ttl: DURATION.optional().describe(
          'lease lifetime without a heartbeat, e.g. 30m, 2h (default pool.leaseTtl); this session heartbeats it while connected',
        ),
        wait: z
          .boolean()
          .optional()
          .describe('wait in the queue (default true); false: fail at once (75)'),
        timeout: DURATION.optional().describe(
          'longest wait, e.g. 90s, 30m (default pool.waitTimeout)',
        ),
        identity: z.string().optional().describe('prefer the slot this identity used last'),
      }),
    },
    tool(async (a, ctx) => {
      const progressToken = ctx.mcpReq._meta?.progressToken;
      let beats = 0;
      const lease = await pool.lease({
        agent: a.agent,
        task: a.task,
        priority: a.priority,
        wait: a.wait ?? true,
        ttlMs: duration(a.ttl, 'ttl'),
        timeoutMs: duration(a.timeout, 'timeout'),
        identity: a.identity,
        signal: ctx.mcpReq.signal,
        onQueue: (p) => {
          log(`${a.agent}: waiting in the queue, position ${p.position} of ${p.waiting}`);
          if (progressToken === undefined) return;
          // Progress must grow with each notification: it counts them; the position is in the message.
          void ctx.mcpReq
            .notify({
              method: 'notifications/progress',
              params: {
                progressToken,
                progress: ++beats,
                message: `waiting in the queue: position ${p.position} of ${p.waiting}`,
              },
            })
            .catch(() => undefined);
        },
      });
      if (ctx.mcpReq.signal.aborted) {
        // Cancelled while the grant was being claimed: nobody will use it.
        await pool.release({
          slot: lease.slot,
          agent: lease.agent,
          token: lease.token,
          force: true,
        });
        throw usageError('the acquire was cancelled');
      }
      const ttlMs = Date.parse(lease.expiresAt) - Date.parse(lease.acquiredAt);
      keeper.keep(lease.slot, lease.agent, lease.token, ttlMs);
      log(`granted ${lease.slot} to ${lease.agent} (token ${lease.token})`);
      return withHost(pool, lease);
    }),
  );

  server.registerTool(
    'release',
    {
      description:
        'Release a lease (as `pool release --json`). Refuses a dirty worktree (exit 5) unless force, which saves uncommitted and ignored files to a rescue ref first (rescueRef in the result).',
      inputSchema: z.object({
        slot: FIELDS.slot,
        agent: FIELDS.agent,
        token: FIELDS.token,
        force: z.boolean().optional().describe('release a dirty worktree after saving its work'),
      }),
    },
    tool(async (a) => {
      const r = await pool.release({
        slot: a.slot,
        agent: a.agent,
        token: token(a.token),
        force: a.force === true,
      });
      keeper.drop(r.slot);
      await fleetDispatch(pool);
      return r;
    }),
  );

  server.registerTool(
    'heartbeat',
    {
      description:
        'Renew a lease (as `pool heartbeat --json`); this server already does it for its session.',
      inputSchema: z.object({ slot: FIELDS.slot, agent: FIELDS.agent, token: FIELDS.token }),
    },
    tool((a) => pool.heartbeat({ slot: a.slot, agent: a.agent, token: token(a.token) })),
  );

  server.registerTool(
    'status',
    {
      description:
        'Slots, leases, queue and capacity (as `pool status --json`); `session` lists the leases this server heartbeats.',
      inputSchema: z.object({}),
    },
    tool(async () => ({ ...(await pool.getStatus()), session: keeper.list() })),
  );

  server.registerTool(
    'logs',
    {
      description:
        'The last output of the command `pool run` runs in a slot (as `pool logs --json`).',
      inputSchema: z.object({ slot: FIELDS.slot }),
    },
    tool(async (a) => {
      const text = await readLeaseLog(pool.repo.stateDir, a.slot);
      if (text === null)
        throw notFoundError(`no \`pool run\` log for ${a.slot}`, {
          hint: 'only `pool run` keeps its command output; see `pool status`',
        });
      return { slot: a.slot, log: text };
    }),
  );

  server.registerTool(
    'rescue_list',
    {
      description:
        'Saved work refs, newest first (as `pool rescue list --json`), optionally of one slot.',
      inputSchema: z.object({ slot: FIELDS.slot.optional() }),
    },
    tool(async (a) => {
      const slot = a.slot === undefined ? undefined : slotId(slotNumber(a.slot));
      const refs = await pool.rescueList();
      return { rescues: slot ? refs.filter((r) => r.slot === slot) : refs };
    }),
  );

  server.registerTool(
    'attach',
    {
      description:
        'Resume a lease this agent holds (after a restart of its harness or of this server): checks the token, renews the lease and heartbeats it from now on. Returns the lease document of acquire.',
      inputSchema: z.object({ slot: FIELDS.slot, token: FIELDS.token }),
    },
    tool((a) => attach(pool, keeper, a.slot, token(a.token))),
  );
  return server;
}

/** `attach`: the lease of `slot` must carry `token`; then it is renewed and kept by this session. */
async function attach(pool: WorktreePool, keeper: LeaseKeeper, slotArg: string, tok: number) {
  const id = slotId(slotNumber(slotArg));
  const slot = (await pool.readState()).slots[id];
  if (!slot)
    throw notFoundError(`there is no slot ${id} in the pool`, { hint: 'see `pool status`' });
  const lease = slot.lease;
  if (!lease || lease.token !== tok) {
    throw conflictError(
      `lease token ${tok} of ${id} is stale (${lease ? `the lease now has token ${lease.token}` : `the slot is ${slot.state}`}); nothing was changed`,
      { hint: 'this lease was reclaimed (its work is in `rescue_list`); acquire a new slot' },
    );
  }
  // The heartbeat checks the holder and the lease file, and reclaims the lease first if it is over.
  const beat = await pool.heartbeat({
    slot: id,
    agent: checkName(lease.agent, 'agent'),
    token: tok,
  });
  keeper.keep(id, lease.agent, tok, lease.ttlMs);
  log(`attached ${id} of ${lease.agent} (token ${tok})`);
  const dir = pool.names(id).path;
  const envFile = path.join(dir, ENV_FILE);
  return withHost(pool, {
    slot: id,
    path: dir,
    branch: lease.branch,
    agent: lease.agent,
    task: lease.task,
    priority: lease.priority,
    token: tok,
    acquiredAt: lease.acquiredAt,
    expiresAt: beat.expiresAt,
    envFile,
    env: await readEnvFile(envFile).catch(() => ({})),
    attached: true,
  });
}

/**
 * Serves one MCP session on stdio until the client closes stdin (or the process is killed).
 * Resolves when the session is over; the leases it held are left to run out their TTL.
 */
export async function serveMcp(o: McpOptions = {}): Promise<void> {
  // Nothing but protocol on stdout: a stray console.log of any library goes to stderr.
  console.log = console.error;
  console.info = console.error;
  const pool = new WorktreePool({ repo: o.repo, config: o.config });
  pool.reporter = { progress: () => {}, warn: (m) => log(`warning: ${m}`) };
  const keeper = new LeaseKeeper(pool, log);
  const server = createMcpServer(pool, keeper);
  const transport = new StdioServerTransport(o.stdin, o.stdout);
  const closed = new Promise<void>((resolve) => {
    server.server.onclose = () => {
      const held = keeper.list().map((k) => k.slot);
      keeper.close();
      log(
        `session closed${held.length ? `; the leases of ${held.join(', ')} expire after their TTL unless attached` : ''}`,
      );
      resolve();
    };
  });
  await server.connect(transport);
  log(`serving ${pool.repo.mainRoot} on stdio`);
  await closed;
}
