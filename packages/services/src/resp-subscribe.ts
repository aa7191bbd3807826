/**
 * A pub/sub subscription on its own connection, decoded by the streaming decoder: `message`
 * pushes call onMessage, `subscribe` confirmations mark it live. When the connection ends
 * (server restarted, network gone, failover) it reconnects with exponential backoff (100 ms
 * doubling to 5 s), re-asking the sentinels for a redis+sentinel:// URL, subscribes again and
 * calls onReconnect: messages published meanwhile are lost, so the caller re-reads its state.
 * The socket and timers are unref'd: a subscription never keeps the process alive.
 */
import type tls from 'node:tls';
import { RespConnection, type Command } from './resp-connection.js';
import { RedisReplyError, type Reply } from './resp-decoder.js';
import { sentinelMaster } from './resp-sentinel.js';
import { parseRedisUrl } from './resp-url.js';

export interface SubscribeOptions {
  /** Called after a reconnection re-subscribed every channel (messages may have been missed). */
  onReconnect?: () => void;
  /** Called each time every channel is confirmed (first connection and each reconnection). */
  onSubscribed?: () => void;
  /** A failure to connect or subscribe (it keeps retrying). */
  onError?: (e: Error) => void;
  tls?: tls.ConnectionOptions;
  /** First and largest pause between reconnection attempts, ms (default 100 and 5000). */
  backoff?: { minMs: number; maxMs: number };
}

/** Subscribes to the channels; returns the function that ends the subscription. */
export function subscribe(
  url: string,
  channels: string[],
  onMessage: (channel: string, message: string) => void,
  opts: SubscribeOptions = {},
): () => void {
  const t = parseRedisUrl(url);
  const { minMs, maxMs } = opts.backoff ?? { minMs: 100, maxMs: 5000 };
  let stopped = false;
  let conn: RespConnection | undefined;
  let timer: NodeJS.Timeout | undefined;
  let pause = minMs;
  let everSubscribed = false;

  const retry = (e: Error) => {
    conn = undefined;
    if (stopped) return;
    opts.onError?.(e);
    timer = setTimeout(() => void connect(), pause);
    timer.unref();
    pause = Math.min(maxMs, pause * 2);
  };

  const onPush = (r: Reply) => {
    if (!Array.isArray(r) || typeof r[0] !== 'string') return;
    const kind = r[0].toLowerCase();
    if (kind === 'message' && !stopped) {
      onMessage(String(r[1]), String(r[2]));
    } else if (kind === 'subscribe' && Number(r[2]) === new Set(channels).size) {
      pause = minMs;
      const again = everSubscribed;
      everSubscribed = true;
      opts.onSubscribed?.();
      if (again) opts.onReconnect?.();
    }
  };

  const connect = async () => {
    if (stopped) return;
    try {
      let addr = { host: t.host, port: t.port };
      if (t.sentinel) {
        addr = await sentinelMaster(url, { tls: opts.tls });
      }
      const c = await RespConnection.open(addr, {
        url,
        tls: t.tls,
        tlsOptions: opts.tls,
        timeout: 5000,
        unref: true,
        onPush,
        onClose: (why) => {
          if (conn === c) retry(why);
        },
      });
      if (stopped) return c.close();
      c.socket.setKeepAlive(true, 10_000);
      conn = c;
      const auth: Command[] = [];
      if (t.password !== undefined) {
        auth.push(t.username ? ['AUTH', t.username, t.password] : ['AUTH', t.password]);
      }
      const replies = await c.send(auth);
      const refused = replies.find((x) => x instanceof RedisReplyError);
      if (refused) {
        conn = undefined;
        c.close();
        return retry(refused);
      }
      c.socket.setTimeout(0); // a subscription is quiet for as long as nothing is published
      c.write([['SUBSCRIBE', ...channels]]);
    } catch (e) {
      retry(e as Error);
    }
  };

  void connect();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    const c = conn;
    conn = undefined;
    c?.close();
  };
}
