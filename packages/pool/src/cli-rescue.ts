/**
 * `pool rescue list | show | restore`: reading saved work back (docs/pool.md, "Rescue").
 * Logic lives in the rescue module (rescue/index.ts); this file only wires argv to it.
 */
import path from 'node:path';
import { usageError, type CommandSpec } from '@wtpool/core';
import { heldToken, TOKEN_OPTION } from './held-token.js';
import { open, str } from './cli-open.js';
import type { WorktreePool } from './pool.js';

export const RESCUE_COMMANDS: CommandSpec[] = [
  {
    name: 'rescue list',
    summary: 'saved work refs',
    async run(ctx) {
      const refs = await open(ctx).rescueList();
      ctx.out.result({ rescues: refs }, () =>
        refs.length
          ? refs
              .map((r) => `${r.ref}  ${r.commit.slice(0, 10)}  ${r.date}  ${r.subject}`)
              .join('\n') +
            '\n\nsee one with `pool rescue show <ref>`, restore it with `pool rescue restore <ref> --into DIR`'
          : 'no rescued work',
      );
    },
  },
  {
    name: 'rescue show',
    summary: 'what a rescue holds: commits, dirty and ignored files, nested repositories',
    args: [
      {
        name: 'ref',
        description: 'a ref of `pool rescue list` (the part after refs/wtpool/rescue/ will do)',
      },
    ],
    async run(ctx) {
      const { formatRescue } = await import('./rescue/format.js');
      const r = await open(ctx).rescueShow(String(ctx.args.ref));
      ctx.out.result(r, () => formatRescue(r));
    },
  },
  {
    name: 'rescue restore',
    summary:
      'restore a rescue byte for byte (nested repositories included) into a directory or your slot',
    args: [{ name: 'ref', description: 'a ref of `pool rescue list`' }],
    options: [
      {
        name: 'into',
        type: 'string',
        value: 'DIR',
        description: 'restore into this directory (created if missing; default: the current one)',
      },
      {
        name: 'slot',
        type: 'string',
        value: 'SLOT',
        description:
          'restore into this slot: only a lease of yours (--agent, or the token of the slot you run in)',
      },
      {
        name: 'agent',
        type: 'string',
        value: 'NAME',
        description: 'with --slot (or --into a slot): the holder of its lease',
      },
      {
        name: 'force',
        type: 'boolean',
        description:
          'overwrite existing files that differ (without it: exit 5 naming them, nothing written)',
      },
      TOKEN_OPTION,
    ],
    async run(ctx) {
      if (ctx.opts.into !== undefined && ctx.opts.slot !== undefined)
        throw usageError('give --into DIR or --slot SLOT, not both');
      const pool = open(ctx);
      const slot = str(ctx.opts.slot);
      const into = str(ctx.opts.into);
      const where = slot ?? (await slotOfDir(pool, path.resolve(into ?? '.')));
      const r = await pool.rescueRestore(String(ctx.args.ref), {
        into,
        slot,
        agent: str(ctx.opts.agent),
        token: where ? heldToken(ctx.opts.token, where) : null,
        force: ctx.opts.force === true,
      });
      ctx.out.result(r, () =>
        [
          `restored ${r.ref} into ${r.into}: ${r.written.length} file(s) written, ${r.unchanged} already there`,
          ...r.nested.map(
            (n) =>
              `nested repository ${n.path}${n.existed ? ' (existing: branches under refs/wtpool/restored/heads/)' : ''}: ${n.branches.length ? `branches ${n.branches.join(', ')}` : 'no branches'}`,
          ),
          r.overwritten.length ? `overwritten (--force): ${r.overwritten.join(', ')}` : '',
        ]
          .filter(Boolean)
          .join('\n'),
      );
    },
  },
];

/** The slot whose worktree holds `dir`, if any (a restore there is a restore into that slot). */
async function slotOfDir(pool: WorktreePool, dir: string): Promise<string | undefined> {
  const st = await pool.readState();
  return Object.values(st.slots).find((s) => dir === s.path || dir.startsWith(s.path + path.sep))
    ?.id;
}
