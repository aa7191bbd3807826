/**
 * A streaming RESP2 decoder: feed it the socket's chunks as they come, it calls `onReply` once
 * per complete top-level reply. It keeps its place across chunks (a half-received array is
 * never re-parsed from its start: finished elements sit on a stack, and a bulk string's body
 * is gathered until its declared length arrived), so a pipeline of N replies costs O(bytes).
 *
 * Types: `+` simple string, `-` error (a RedisReplyError value, not thrown), `:` integer,
 * `$` bulk string (null for `$-1`), `*` array (nested to any depth; null for `*-1`). With
 * `binary: true` bulk strings come back as Buffers (binary-safe); otherwise as UTF-8 strings.
 */
import { failure } from '@wtpool/core';

export type Reply = string | number | null | Reply[] | RedisReplyError;
/** A reply decoded with `binary: true`: bulk strings stay bytes. */
export type BinaryReply = string | number | null | Buffer | BinaryReply[] | RedisReplyError;

/** An error reply of the server (`-ERR …`), returned as a value in a pipeline's replies. */
export class RedisReplyError extends Error {}

const CR = 13;
const LF = 10;

interface Frame {
  items: BinaryReply[];
  want: number;
}

export class RespDecoder<R extends BinaryReply = Reply> {
  /** Bytes received and not yet consumed, in arrival order (concatenated only when needed). */
  private parts: Buffer[] = [];
  private partsLen = 0;
  /** Declared length of the bulk string whose body is awaited, or -1. */
  private bulkLen = -1;
  /** Arrays being filled, innermost last. */
  private stack: Frame[] = [];

  constructor(
    private readonly onReply: (reply: R) => void,
    private readonly opts: { binary?: boolean } = {},
  ) {}

  /** True when no reply is half-received (nothing buffered, no open array or bulk). */
  get idle(): boolean {
    return this.partsLen === 0 && this.bulkLen < 0 && this.stack.length === 0;
  }

  /** Consumes one chunk; throws ERR_REDIS_PROTOCOL on bytes that are not RESP2. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.parts.push(chunk);
    this.partsLen += chunk.length;
    // A large bulk body arriving in many chunks is joined once, when it is complete.
    if (this.bulkLen >= 0 && this.partsLen < this.bulkLen + 2) return;
    const buf = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    this.parts = [];
    this.partsLen = 0;
    const pos = this.decode(buf);
    if (pos < buf.length) {
      this.parts.push(buf.subarray(pos));
      this.partsLen = buf.length - pos;
    }
  }

  /** Decodes what it can of buf; returns the offset of the first byte not consumed. */
  private decode(buf: Buffer): number {
    let pos = 0;
    for (;;) {
      if (this.bulkLen >= 0) {
        const end = pos + this.bulkLen;
        if (buf.length < end + 2) return pos;
        if (buf[end] !== CR || buf[end + 1] !== LF) {
          throw failure('ERR_REDIS_PROTOCOL', 'RESP bulk string not followed by CRLF');
        }
        const body = this.opts.binary
          ? Buffer.from(buf.subarray(pos, end))
          : buf.toString('utf8', pos, end);
        this.bulkLen = -1;
        pos = end + 2;
        this.emit(body);
        continue;
      }
      let eol = buf.indexOf(LF, pos);
      if (eol < 0) return pos;
      if (eol === pos || buf[eol - 1] !== CR) {
        throw failure('ERR_REDIS_PROTOCOL', 'RESP line not ended by CRLF');
      }
      eol -= 1;
      const type = buf[pos]!;
      const line = buf.toString('utf8', pos + 1, eol);
      pos = eol + 2;
      switch (type) {
        case 0x2b: // +
          this.emit(line);
          break;
        case 0x2d: // -
          this.emit(new RedisReplyError(line));
          break;
        case 0x3a: // :
          this.emit(integer(line));
          break;
        case 0x24: {
          // $
          const n = integer(line);
          if (n < 0) this.emit(null);
          else this.bulkLen = n;
          break;
        }
        case 0x2a: {
          // *
          const n = integer(line);
          if (n < 0) this.emit(null);
          else if (n === 0) this.emit([]);
          else this.stack.push({ items: [], want: n });
          break;
        }
        default:
          throw failure(
            'ERR_REDIS_PROTOCOL',
            `unexpected RESP reply type ${JSON.stringify(String.fromCharCode(type))}`,
          );
      }
    }
  }

  private emit(value: BinaryReply): void {
    let v = value;
    for (;;) {
      const top = this.stack[this.stack.length - 1];
      if (!top) break;
      top.items.push(v);
      if (top.items.length < top.want) return;
      this.stack.pop();
      v = top.items;
    }
    this.onReply(v as R);
  }
}

function integer(line: string): number {
  if (!/^-?\d+$/.test(line)) {
    throw failure('ERR_REDIS_PROTOCOL', `RESP integer expected, got ${JSON.stringify(line)}`);
  }
  return Number(line);
}

/** One command as RESP2 (an array of bulk strings); Buffers are sent as they are. */
export function encodeCommand(args: readonly (string | number | Buffer)[]): Buffer {
  if (!args.some((a) => Buffer.isBuffer(a))) {
    let s = `*${args.length}\r\n`;
    for (const a of args) s += `$${Buffer.byteLength(String(a))}\r\n${String(a)}\r\n`;
    return Buffer.from(s);
  }
  const out: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
    out.push(Buffer.from(`$${b.length}\r\n`), b, CRLF);
  }
  return Buffer.concat(out);
}

const CRLF = Buffer.from('\r\n');
