/** Asks the user on the terminal; refuses outright when there is none (CI, agents, pipes). */
import { createInterface } from 'node:readline/promises';
import { usageError, type CommandContext } from '@wtpool/core';

export async function confirm(question: string, ctx: CommandContext): Promise<void> {
  if (!process.stdin.isTTY || !process.stderr.isTTY || ctx.json) {
    throw usageError('refusing to clean up without confirmation: no terminal to ask on', {
      hint: 'review `monitor cleanup-leaks --dry-run`, then pass --yes',
    });
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim()))
      throw usageError('cleanup cancelled; nothing was changed');
  } finally {
    rl.close();
  }
}
