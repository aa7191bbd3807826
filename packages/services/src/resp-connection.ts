/**
 * One RESP connection (plain or TLS): commands are written as they come (pipelined), replies
 * are matched to them in order by the streaming decoder; a reply that no command waits for
 * (a pub/sub push) goes to `onPush`. Any socket failure rejects every pending command with
 * serviceUnavailableError (exit 6) naming the redacted URL.
 */
import net from 'node:net';
import tls from 'node:tls';
import { redact, serviceUnavailableError, trustExtraCaCerts } from '@wtpool/core';
import { encodeCommand, RespDecoder, type Reply } from './resp-decoder.js';
import type { RedisAddress } from './resp-url.js';

export type Command = readonly (string | number | Buffer)[];

export interface ConnectOptions {
  /** The URL the caller gave (redacted in messages). */
  url: string;
  tls: boolean;
  /** Extra node:tls options (ca, cert, rejectUnauthorized …) for rediss:// URLs. */
  tlsOptions?: tls.ConnectionOptions;
  /** Idle limit while a reply is awaited, ms (0: none). */
  timeout: number;
  /** Does not keep the process alive (socket and connect timer unref'd). */
  unref?: boolean;
  /** Replies no command waits for (pub/sub messages). */
  onPush?: (reply: Reply) => void;
  /** Called once when the connection ends, with the reason (after pending commands failed). */
  onClose?: (why: Error) => void;
}

interface Pending {
  want: number;
  replies: Reply[];
  resolve: (r: Reply[]) => void;
  reject: (e: Error) => void;
}

export const unavailable = (url: string, why: string): Error =>
  serviceUnavailableError(`Redis at ${redact(url)} is unreachable: ${why}`, {
    hint: 'start Redis (or fix redis.url in pool.config.yaml), then retry',
  });

export class RespConnection {
  private pending: Pending[] = [];
  private closed: Error | undefined;
  private readonly decoder: RespDecoder;

  private constructor(
    readonly socket: net.Socket,
    private readonly opts: ConnectOptions,
  ) {
    this.decoder = new RespDecoder((r) => this.reply(r));
    socket.on('data', (chunk: Buffer) => {
      try {
        this.decoder.push(chunk);
      } catch (e) {
        this.fail(e as Error);
      }
    });
    socket.on('error', (e: NodeJS.ErrnoException) =>
      this.fail(unavailable(opts.url, e.code ?? e.message)),
    );
    socket.on('close', () => this.fail(unavailable(opts.url, 'connection closed')));
    if (opts.timeout > 0) {
      socket.setTimeout(opts.timeout, () => {
        if (this.pending.length) {
          this.fail(unavailable(opts.url, `no answer within ${opts.timeout} ms`));
        }
      });
    }
  }

  /** Connects to addr; rejects with serviceUnavailableError when that fails. */
  static async open(addr: RedisAddress, opts: ConnectOptions): Promise<RespConnection> {
    // A TLS connection trusts NODE_EXTRA_CA_CERTS, also when the launcher kept it from Node (D386).
    if (opts.tls) await trustExtraCaCerts();
    return new Promise((resolve, reject) => {
      const socket: net.Socket = opts.tls
        ? tls.connect({
            host: addr.host,
            port: addr.port,
            ...(net.isIP(addr.host) ? {} : { servername: addr.host }),
            ...opts.tlsOptions,
          })
        : net.connect({ host: addr.host, port: addr.port });
      socket.setNoDelay(true);
      if (opts.unref) socket.unref();
      const failed = (e: NodeJS.ErrnoException) => {
        clearTimeout(timer); // a refused connection must not keep the process alive until it fires
        socket.destroy();
        reject(unavailable(opts.url, e.code ?? e.message));
      };
      const timer =
        opts.timeout > 0
          ? setTimeout(
              () =>
                failed({ message: `no answer within ${opts.timeout} ms` } as NodeJS.ErrnoException),
              opts.timeout,
            )
          : undefined;
      if (opts.unref) timer?.unref();
      socket.once('error', failed);
      socket.once(opts.tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.off('error', failed);
        resolve(new RespConnection(socket, opts));
      });
    });
  }

  /** Sends the commands in one write; resolves with their replies (error replies as values). */
  send(commands: readonly Command[]): Promise<Reply[]> {
    if (this.closed) return Promise.reject(this.closed);
    if (commands.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.pending.push({ want: commands.length, replies: [], resolve, reject });
      this.socket.write(Buffer.concat(commands.map(encodeCommand)));
    });
  }

  /** Writes commands whose replies are pushes (SUBSCRIBE): they go to onPush. */
  write(commands: readonly Command[]): void {
    if (!this.closed) this.socket.write(Buffer.concat(commands.map(encodeCommand)));
  }

  close(): void {
    this.fail(unavailable(this.opts.url, 'connection closed by the client'));
  }

  private reply(r: Reply): void {
    const head = this.pending[0];
    if (!head) {
      this.opts.onPush?.(r);
      return;
    }
    head.replies.push(r);
    if (head.replies.length === head.want) {
      this.pending.shift();
      head.resolve(head.replies);
    }
  }

  private fail(why: Error): void {
    if (this.closed) return;
    this.closed = why;
    this.socket.destroy();
    for (const p of this.pending.splice(0)) p.reject(why);
    this.opts.onClose?.(why);
  }
}
