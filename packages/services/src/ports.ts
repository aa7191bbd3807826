/**
 * Port blocks: slot n owns ports.base + n*stride … + stride-1 (from slotNames()), as PORT,
 * PORT_RANGE_START/END and, with `ports.names: [web, api]`, WEB_PORT (the block's first port)
 * and API_PORT (the next). At lease we warn about ports of the block already bound; `pool
 * doctor` and `monitor status` name the process when it is not the slot's (squatters).
 */
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Config } from '@wtpool/config';
import type { SlotProvider } from './provider.js';

/** The env keys of a block: PORT, the range, and one `<NAME>_PORT` per ports.names entry. */
export function portEnv(
  block: { start: number; end: number },
  portNames: readonly string[] = [],
): Record<string, string> {
  const env: Record<string, string> = {
    PORT: String(block.start),
    PORT_RANGE_START: String(block.start),
    PORT_RANGE_END: String(block.end),
  };
  portNames.forEach((n, i) => {
    env[`${n.toUpperCase()}_PORT`] = String(block.start + i);
  });
  return env;
}

/** Listening TCP sockets from /proc/net/tcp{,6} (Linux): port → socket inodes. */
async function listenersFromProc(): Promise<Map<number, number[]> | undefined> {
  const ports = new Map<number, number[]>();
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
      // local_address is ADDR:PORT in hex; state 0A is LISTEN; column 9 is the socket inode.
      if (cols[3] !== '0A') continue;
      const port = parseInt(cols[1]!.split(':')[1]!, 16);
      ports.set(port, [...(ports.get(port) ?? []), Number(cols[9])]);
    }
  }
  return found ? ports : undefined;
}

async function listeningFromProc(): Promise<Set<number> | undefined> {
  const m = await listenersFromProc();
  return m ? new Set(m.keys()) : undefined;
}

/** pid → working directory and command of the processes holding these socket inodes. */
async function socketOwners(
  inodes: Set<number>,
): Promise<Map<number, { pid: number; cwd: string | null; comm: string | null }>> {
  const owners = new Map<number, { pid: number; cwd: string | null; comm: string | null }>();
  const pids = (await fs.readdir('/proc').catch(() => [] as string[])).filter((p) =>
    /^\d+$/.test(p),
  );
  for (const pid of pids) {
    const fds = await fs.readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const link = await fs.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (!m || !inodes.has(Number(m[1]))) continue;
      const [cwd, comm] = await Promise.all([
        fs.readlink(`/proc/${pid}/cwd`).catch(() => null),
        fs.readFile(`/proc/${pid}/comm`, 'utf8').then(
          (t) => t.trim(),
          () => null,
        ),
      ]);
      owners.set(Number(m[1]), { pid: Number(pid), cwd, comm });
    }
  }
  return owners;
}

export interface PortSquatter {
  port: number;
  /** The process listening, when this user may see it (null: another user's). */
  pid: number | null;
  command: string | null;
}

/**
 * Ports of [start, end] bound by a process that is not the slot's: one whose working directory
 * is not inside `slotDir` (or that this user cannot see). Linux only (/proc); elsewhere none.
 */
export async function portSquatters(
  start: number,
  end: number,
  slotDir: string,
): Promise<PortSquatter[]> {
  const listening = await listenersFromProc();
  if (!listening) return [];
  const bound = [...listening].filter(([p]) => p >= start && p <= end);
  if (!bound.length) return [];
  const owners = await socketOwners(new Set(bound.flatMap(([, inodes]) => inodes)));
  const slot = await fs.realpath(slotDir).catch(() => path.resolve(slotDir));
  const ours = (cwd: string | null) =>
    cwd !== null && (cwd === slot || cwd.startsWith(slot + path.sep));
  const out: PortSquatter[] = [];
  for (const [port, inodes] of bound.sort((a, b) => a[0] - b[0])) {
    const holders = inodes.map((i) => owners.get(i));
    if (holders.some((h) => h && ours(h.cwd))) continue;
    const h = holders.find((x) => x !== undefined);
    out.push({ port, pid: h?.pid ?? null, command: h?.comm ?? null });
  }
  return out;
}

/** One line per squatter, for doctor and the monitor. */
export function squatterProblems(
  id: string,
  block: { start: number; end: number },
  squatters: PortSquatter[],
  portNames: readonly string[] = [],
): string[] {
  return squatters.map((s) => {
    const name = portNames[s.port - block.start];
    const by =
      s.pid === null
        ? 'a process of another user'
        : `pid ${s.pid}${s.command ? ` (${s.command})` : ''}`;
    return `port ${s.port}${name ? ` (${name.toUpperCase()}_PORT)` : ''} of ${id}'s block ${block.start}-${block.end} is bound by ${by}, not a process of the slot`;
  });
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

export function portsProvider(config: Config): SlotProvider {
  const env = (b: { start: number; end: number }) => portEnv(b, config.ports.names);
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
    async check(ctx) {
      const block = ctx.names.ports!;
      const squatters = await portSquatters(block.start, block.end, ctx.names.path);
      return squatterProblems(ctx.names.id, block, squatters, config.ports.names);
    },
  };
}
