/**
 * `pnpm bench lock`: locked JsonStore updates per second, one process and sixteen contending
 * processes, each as a ratio to a raw `mkdir` + write + fsync + rename (+ rmdir) loop measured
 * in the same run, on the disk and on tmpfs. Rounds are interleaved; medians are quoted.
 */
import { spawn } from 'node:child_process';
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { JsonStore } from '@wtpool/lock';
import { median, report, scratch, type Row } from './harness.js';

const WORKER = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../packages/lock/test/fixtures/worker.mjs',
);
const OPS = Number(process.env.BENCH_LOCK_OPS ?? 300);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const PROCS = 16;

/** The baseline: the bare syscalls of a mkdir-locked atomic write, synchronous (the fastest form). */
async function rawLoop(dir: string, n: number): Promise<number> {
  const target = path.join(dir, 'raw.json');
  const lock = `${target}.lock`;
  const t = performance.now();
  for (let i = 0; i < n; i++) {
    mkdirSync(lock);
    const tmp = `${target}.tmp`;
    const fd = openSync(tmp, 'w');
    writeFileSync(fd, JSON.stringify({ version: i, data: { n: i } }));
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, target);
    rmdirSync(lock);
    await Promise.resolve();
  }
  return (n / (performance.now() - t)) * 1000;
}

async function lockedLoop(dir: string, n: number): Promise<number> {
  const store = new JsonStore(path.join(dir, `one-${Math.random()}.json`), { initial: { n: 0 } });
  const t = performance.now();
  for (let i = 0; i < n; i++) await store.update((d) => void d.n++);
  return (n / (performance.now() - t)) * 1000;
}

async function contended(dir: string, perProc: number): Promise<number> {
  const file = path.join(dir, `many-${Math.random()}.json`);
  const barrier = `${file}.go`;
  const procs = Array.from({ length: PROCS }, () => {
    const child = spawn(
      process.execPath,
      [WORKER, 'increment-timed', file, String(perProc), barrier],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    return new Promise<{ start: number; end: number }>((resolve, reject) =>
      child.on('exit', (code) =>
        code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`worker exited ${code}: ${out}`)),
      ),
    );
  });
  await new Promise((r) => setTimeout(r, 600)); // let all 16 start before the barrier opens
  writeFileSync(barrier, '');
  const times = await Promise.all(procs);
  const start = Math.min(...times.map((t) => t.start));
  const end = Math.max(...times.map((t) => t.end));
  const n = (await new JsonStore(file, { initial: { n: 0 } }).read()).n;
  if (n !== PROCS * perProc) throw new Error(`lost updates: ${n} != ${PROCS * perProc}`);
  return (n / (end - start)) * 1000;
}

async function suite(label: string, tmpfs: boolean): Promise<Row[]> {
  const dir = scratch('lock', tmpfs);
  const raw: number[] = [];
  const one: number[] = [];
  const many: number[] = [];
  try {
    for (let r = 0; r < ROUNDS; r++) {
      raw.push(await rawLoop(dir, OPS));
      one.push(await lockedLoop(dir, OPS));
      many.push(await contended(dir, Math.ceil(OPS / 4)));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const [mr, m1, m16] = [median(raw), median(one), median(many)];
  const f = (x: number) => `${Math.round(x)} /s`;
  return [
    { what: `${label}: raw mkdir+write+fsync+rename loop`, value: f(mr) },
    {
      what: `${label}: locked update, 1 process`,
      value: f(m1),
      baseline: f(mr),
      ratio: mr / m1,
      goal: 'slowdown ≤ 2× raw',
    },
    {
      what: `${label}: locked updates, ${PROCS} processes aggregate`,
      value: f(m16),
      baseline: f(m1),
      ratio: m16 / m1,
      goal: '≥ 0.5× of 1 process',
    },
  ];
}

export async function run(): Promise<void> {
  const rows = [...(await suite('disk', false)), ...(await suite('tmpfs', true))];
  report(
    `lock (${OPS} ops × ${ROUNDS} interleaved rounds, medians; ratio row 2 = raw/locked, row 3 = 16 procs/1 proc)`,
    rows,
  );
}
