/**
 * The services' raw RESP client, loaded on first use: the Redis lease store sits on every
 * command's static path (store.ts), but only a `store.backend: redis` pool talks to Redis, and
 * the client pulls in node:net and node:tls, which a warm file-backed acquire should not load.
 */
import type { RedisReplyError, Reply } from '@wtpool/services/resp';

export type { Reply };
type Resp = typeof import('@wtpool/services/resp');

let loaded: Resp | undefined;
let loading: Promise<Resp> | undefined;
const resp = async (): Promise<Resp> =>
  (loaded ??= await (loading ??= import('@wtpool/services/resp')));

/** `redisPipeline` of @wtpool/services/resp (one connection, the commands, their replies). */
export async function redisPipeline(...args: Parameters<Resp['redisPipeline']>): Promise<Reply[]> {
  return (await resp()).redisPipeline(...args);
}

/** An error reply of the server (never true before the client was loaded: no reply exists yet). */
export const isReplyError = (r: unknown): r is RedisReplyError =>
  loaded !== undefined && r instanceof loaded.RedisReplyError;

/**
 * `subscribe` of @wtpool/services/resp, started once the client is loaded; the returned stop
 * function works before and after that.
 */
export function subscribeLazily(...args: Parameters<Resp['subscribe']>): () => void {
  let stop: (() => void) | undefined;
  let stopped = false;
  resp()
    .then((m) => {
      if (!stopped) stop = m.subscribe(...args);
    })
    .catch((e: unknown) => args[3]?.onError?.(e as Error));
  return () => {
    stopped = true;
    stop?.();
  };
}
