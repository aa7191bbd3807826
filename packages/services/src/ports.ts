/**
 * Port blocks: slot n owns ports.base + n*stride … + stride-1 (from slotNames()). At lease we
 * warn about ports of the block already bound (something outside the slot squats on them).
 */
import { promises as fs } from 'node:fs';
import net from 'node:net';
import type { SlotProvider } from './provider.js';

/** Listening TCP ports from /proc/net/tcp{,6} (Linux), or undefined when not available. */
async function listeningFromProc(): Promise<Set<number> | undefined> {
  const ports = new Set<number>();
  let found = false;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch {
      continue;
    }
    found = true;
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      // local_address is ADDR:PORT in hex; state 0A is LISTEN.
      if (cols[3] === '0A') ports.add(parseInt(cols[1]!.split(':')[1]!, 16));
    }
  }
  return found ? ports : undefined;
}

function probe(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(true));
    srv.listen({ port, host: '0.0.0.0', exclusive: true }, () => srv.close(() => resolve(false)));
  });
}

/** Ports in [start, end] that something is listening on. */
export async function boundPorts(start: number, end: number): Promise<number[]> {
  const all = Array.from({ length: end - start + 1 }, (_, i) => start + i);
  const listening = await listeningFromProc();
  if (listening) return all.filter((p) => listening.has(p));
  const busy = await Promise.all(all.map(probe));
  return all.filter((_, i) => busy[i]);
}

export function portsProvider(): SlotProvider {
  const env = (b: { start: number; end: number }) => ({
    PORT: String(b.start),
    PORT_RANGE_START: String(b.start),
    PORT_RANGE_END: String(b.end),
  });
  return {
    name: 'ports',
    async lease(ctx) {
      const block = ctx.names.ports!;
      const busy = await boundPorts(block.start, block.end);
      if (busy.length) {
        ctx.warn(
          `${ctx.names.id}: port${busy.length > 1 ? 's' : ''} ${busy.join(', ')} of its block ${block.start}-${block.end} ${busy.length > 1 ? 'are' : 'is'} already bound by another process`,
        );
      }
      return env(block);
    },
    env: async (ctx) => env(ctx.names.ports!),
  };
}
