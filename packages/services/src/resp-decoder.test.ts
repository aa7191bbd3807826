import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  encodeCommand,
  RedisReplyError,
  RespDecoder,
  type BinaryReply,
  type Reply,
} from './resp-decoder.js';

/** A reply as the server would send it, described independently of the decoder. */
type Node =
  | { t: 'simple'; s: string }
  | { t: 'err'; s: string }
  | { t: 'int'; n: number }
  | { t: 'bulk'; b: Uint8Array }
  | { t: 'nullBulk' }
  | { t: 'nullArr' }
  | { t: 'arr'; items: Node[] };

const lineText = fc.string({ maxLength: 20 }).map((s) => s.replace(/[\r\n]/g, '_'));
const { node } = fc.letrec<{ node: Node }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    lineText.map((s) => ({ t: 'simple' as const, s })),
    lineText.map((s) => ({ t: 'err' as const, s })),
    fc.integer().map((n) => ({ t: 'int' as const, n })),
    // Bytes that include CR, LF and "\r\n" sequences inside the body.
    fc
      .array(fc.constantFrom(13, 10, 36, 42, 0, 255, 97), { maxLength: 40 })
      .map((a) => ({ t: 'bulk' as const, b: Uint8Array.from(a) })),
    fc.uint8Array({ maxLength: 300 }).map((b) => ({ t: 'bulk' as const, b })),
    fc.constant({ t: 'nullBulk' as const }),
    fc.constant({ t: 'nullArr' as const }),
    fc.array(tie('node'), { maxLength: 5 }).map((items) => ({ t: 'arr' as const, items })),
  ),
}));

function wire(n: Node): Buffer {
  switch (n.t) {
    case 'simple':
      return Buffer.from(`+${n.s}\r\n`);
    case 'err':
      return Buffer.from(`-${n.s}\r\n`);
    case 'int':
      return Buffer.from(`:${n.n}\r\n`);
    case 'bulk':
      return Buffer.concat([Buffer.from(`$${n.b.length}\r\n`), n.b, Buffer.from('\r\n')]);
    case 'nullBulk':
      return Buffer.from('$-1\r\n');
    case 'nullArr':
      return Buffer.from('*-1\r\n');
    case 'arr':
      return Buffer.concat([Buffer.from(`*${n.items.length}\r\n`), ...n.items.map(wire)]);
  }
}

/** What the decoder must return, errors as {error: message} for comparison. */
function expected(n: Node, binary: boolean): unknown {
  switch (n.t) {
    case 'simple':
      return n.s;
    case 'err':
      return { error: n.s };
    case 'int':
      return n.n;
    case 'bulk':
      return binary ? Buffer.from(n.b) : Buffer.from(n.b).toString('utf8');
    case 'nullBulk':
    case 'nullArr':
      return null;
    case 'arr':
      return n.items.map((i) => expected(i, binary));
  }
}

const comparable = (r: BinaryReply): unknown =>
  r instanceof RedisReplyError ? { error: r.message } : Array.isArray(r) ? r.map(comparable) : r;

/** Splits bytes at the given cut points (sorted, deduplicated, inside the buffer). */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...at, bytes.length]) {
    out.push(bytes.subarray(prev, c));
    prev = c;
  }
  return out;
}

describe('RespDecoder', () => {
  it('decodes any sequence of replies split at any points', () => {
    fc.assert(
      fc.property(
        fc.array(node, { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        fc.boolean(),
        (nodes, cuts, binary) => {
          const got: BinaryReply[] = [];
          const d = new RespDecoder<BinaryReply>((r) => got.push(r), { binary });
          for (const c of split(Buffer.concat(nodes.map(wire)), cuts)) d.push(Buffer.from(c));
          expect(got.map(comparable)).toEqual(nodes.map((n) => expected(n, binary)));
          expect(d.idle).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('fed one byte at a time, emits each reply exactly when its last byte arrives', () => {
    fc.assert(
      fc.property(fc.array(node, { minLength: 1, maxLength: 4 }), (nodes) => {
        const got: BinaryReply[] = [];
        const d = new RespDecoder<BinaryReply>((r) => got.push(r), { binary: true });
        for (const [i, n] of nodes.entries()) {
          const bytes = wire(n);
          for (let j = 0; j < bytes.length; j++) {
            d.push(bytes.subarray(j, j + 1));
            expect(got.length).toBe(j === bytes.length - 1 ? i + 1 : i);
          }
        }
        expect(got.map(comparable)).toEqual(nodes.map((n) => expected(n, true)));
      }),
      { numRuns: 100 },
    );
  });

  it('gathers a large bulk body without re-reading it per chunk', () => {
    const body = Buffer.alloc(1 << 20, 'x');
    const got: Reply[] = [];
    const d = new RespDecoder((r) => got.push(r));
    const bytes = Buffer.concat([
      Buffer.from(`*2\r\n$${body.length}\r\n`),
      body,
      Buffer.from('\r\n:7\r\n'),
    ]);
    for (let i = 0; i < bytes.length; i += 1000) d.push(bytes.subarray(i, i + 1000));
    expect(got).toHaveLength(1);
    expect((got[0] as Reply[])[0]).toHaveLength(body.length);
    expect((got[0] as Reply[])[1]).toBe(7);
  });

  it('refuses bytes that are not RESP2', () => {
    const d = new RespDecoder(() => {});
    expect(() => d.push(Buffer.from('HTTP/1.1 400 Bad Request\r\n'))).toThrow(/reply type "H"/);
    expect(() => new RespDecoder(() => {}).push(Buffer.from(':x1\r\n'))).toThrow(/integer/);
    expect(() => new RespDecoder(() => {}).push(Buffer.from('$1\r\nab\r\n'))).toThrow(/CRLF/);
  });

  it('encodes commands as arrays of bulk strings, Buffers byte for byte', () => {
    expect(encodeCommand(['SET', 'k', 12]).toString()).toBe(
      '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n',
    );
    expect(encodeCommand(['SET', 'é']).toString()).toBe('*2\r\n$3\r\nSET\r\n$2\r\né\r\n');
    const bin = encodeCommand(['SET', Buffer.from([0, 13, 10])]);
    expect(bin.includes(Buffer.from([36, 51, 13, 10, 0, 13, 10, 13, 10]))).toBe(true);
  });
});
