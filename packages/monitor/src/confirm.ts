/** Asks the user on the terminal; refuses outright when there is none (CI, agents, pipes). */
import { askYesNo, canAsk, usageError, type CommandContext } from '@wtpool/core';

export async function confirm(question: string, ctx: CommandContext): Promise<void> {
  if (!canAsk() || ctx.json) {
    throw usageError('refusing to clean up without confirmation: no terminal to ask on', {
      hint: 'review `monitor cleanup-leaks --dry-run`, then pass --yes',
    });
  }
  if (!(await askYesNo(question))) throw usageError('cleanup cancelled; nothing was changed');
}
