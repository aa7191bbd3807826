/**
 * Which lease the calling process speaks for: the `--token` option and the token of the
 * process's own environment (issue 21 item 4, D304). Never the slot's `.env.worktree` on disk.
 */
import { slotId, slotNumber } from '@wtpool/config';
import { conflictError, usageError, type OptionSpec } from '@wtpool/core';

export const TOKEN_OPTION: OptionSpec = {
  name: 'token',
  type: 'string',
  value: 'N',
  description:
    "the lease fencing token, a whole number from 1 (default: this process's WTPOOL_LEASE_TOKEN, set by `pool run` and by sourcing .env.worktree); a stale token exits 5",
};

/** A lease token as the pool writes it: digits, no sign, no leading zero (`02`, `+2`, `2.0` are refused). */
function canonicalToken(raw: string, where: string): number {
  if (!/^[1-9][0-9]{0,15}$/.test(raw) || !Number.isSafeInteger(Number(raw)))
    throw usageError(
      `${where} must be a lease token (a whole number from 1, without sign or leading zeros), got ${JSON.stringify(raw)}`,
    );
  return Number(raw);
}

/**
 * The token of the lease the calling process holds on `slotArg`: --token, else the
 * WTPOOL_LEASE_TOKEN of its own environment (`pool run` gives it to its command; an agent that
 * sources `.env.worktree` at the start of its lease has it). Never read from the slot's
 * `.env.worktree` on disk: the next holder's lease rewrites that file, so a stale holder inside
 * the worktree would act with the new lease's token (issue 21 item 4). A token naming another
 * slot (WORKTREE_ID) is refused. Null: none known; then the agent name alone is checked.
 */
export function heldToken(
  option: string | number | boolean | string[] | undefined,
  slotArg: string,
): number | null {
  if (option !== undefined) return canonicalToken(String(option), '--token');
  const raw = process.env.WTPOOL_LEASE_TOKEN;
  if (raw === undefined || raw === '') return null;
  const token = canonicalToken(raw, 'WTPOOL_LEASE_TOKEN');
  let id: string;
  try {
    id = slotId(slotNumber(slotArg));
  } catch {
    return null; // the command itself reports the bad slot id
  }
  const own = process.env.WORKTREE_ID;
  if (own && own !== id)
    throw conflictError(
      `this process's WTPOOL_LEASE_TOKEN (${token}) is the lease of ${own}, not of ${id}; nothing was changed`,
      { hint: `pass --token with the token of ${id}'s lease (see \`pool status\`)` },
    );
  return token;
}
