/**
 * The always-on providers: armed hooks (provision) and the env file (lease/release). The env
 * file provider runs last: at lease it gathers env() of every other provider, adds WORKTREE_ID
 * and POOL_STATE_DIR, and writes `.env.worktree`; at release it removes it.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ProviderContext, SlotProvider } from './provider.js';
import { ENV_FILE, excludeFromGit, writeEnvFile } from './envfile.js';
import { armHooks } from './hooks.js';

export function hooksProvider(): SlotProvider {
  return {
    name: 'hooks',
    async provision(ctx) {
      const r = await armHooks(ctx.repo.mainRoot, ctx.names.path);
      if (r.armed) ctx.progress(`${ctx.names.id}: hooks armed (${r.hooksPath})`);
    },
    async check(ctx) {
      const r = await armHooks(ctx.repo.mainRoot, ctx.names.path);
      return r.armed ? [`${ctx.names.id}: hooks were not armed (fixed: ${r.reason})`] : [];
    },
  };
}

export const baseEnv = (ctx: ProviderContext): Record<string, string> => ({
  WORKTREE_ID: ctx.names.id,
  POOL_STATE_DIR: ctx.repo.stateDir,
});

export const envFilePath = (ctx: ProviderContext) => path.join(ctx.names.path, ENV_FILE);

export function envFileProvider(others: SlotProvider[]): SlotProvider {
  const gather = async (ctx: ProviderContext) => {
    const env = baseEnv(ctx);
    for (const p of others) Object.assign(env, await p.env?.(ctx));
    return env;
  };
  return {
    name: 'env',
    provision: (ctx) => excludeFromGit(ctx.repo.commonDir, [ENV_FILE]),
    async lease(ctx) {
      await excludeFromGit(ctx.repo.commonDir, [ENV_FILE]);
      await writeEnvFile(envFilePath(ctx), await gather(ctx));
      return baseEnv(ctx);
    },
    env: async (ctx) => baseEnv(ctx),
    release: (ctx) => fs.rm(envFilePath(ctx), { force: true }),
    destroy: (ctx) => fs.rm(envFilePath(ctx), { force: true }),
  };
}
