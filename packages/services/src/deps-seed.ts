/**
 * One install for the pool (deps.ts's auto strategy without a usable main checkout): the
 * install marker each slot's node_modules carries, and the seeds, the slots installed (or cloned)
 * from a lockfile, which the next slots with that lockfile clone instead of installing. The
 * first slot to find no seed installs under the seed lock; the slots of the same process wait
 * for its outcome rather than for the lock one after another.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ensurePrivateDir, withLock, writePrivateFile } from '@wtpool/lock';

/** A lockfile: its name and the hash of its content. */
export type Lock = { file: string; hash: string };

const MARKER = path.join('node_modules', '.wtpool-deps.json');

export async function readMarker(worktree: string): Promise<{ hash: string | null } | undefined> {
  return fs
    .readFile(path.join(worktree, MARKER), 'utf8')
    .then((t) => JSON.parse(t) as { hash: string | null })
    .catch(() => undefined);
}

export async function writeMarker(
  worktree: string,
  lock: Lock | null,
  strategy: string,
): Promise<void> {
  const file = path.join(worktree, MARKER);
  await fs.mkdir(path.dirname(file), { recursive: true });
  // A clone's marker is a hard link to its source's: a new file renamed over it, not a write
  // into theirs; and never missing, since another slot's provisioning may be reading it (seedSource).
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(
    tmp,
    JSON.stringify({ hash: lock?.hash ?? null, lockfile: lock?.file ?? null, strategy }) + '\n',
  );
  await fs.rename(tmp, file);
}

/** Seeds: slots whose node_modules were installed (or cloned) from a given lockfile hash. */
const seedDir = (stateDir: string, hash: string) =>
  path.join(stateDir, 'deps', 'seeds', hash.slice(0, 32));
const seedName = (worktree: string) =>
  createHash('sha256').update(path.resolve(worktree)).digest('hex').slice(0, 16);

export async function addSeed(stateDir: string, hash: string, worktree: string): Promise<void> {
  const dir = seedDir(stateDir, hash);
  ensurePrivateDir(path.dirname(path.dirname(dir)));
  ensurePrivateDir(path.dirname(dir));
  ensurePrivateDir(dir);
  await writePrivateFile(path.join(dir, seedName(worktree)), path.resolve(worktree) + '\n');
}

/** A slot other than `worktree` whose node_modules match `hash` now, if any. */
async function seedSource(
  stateDir: string,
  hash: string,
  worktree: string,
): Promise<string | null> {
  const dir = seedDir(stateDir, hash);
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  for (const n of names.sort()) {
    const src = (await fs.readFile(path.join(dir, n), 'utf8').catch(() => '')).trim();
    if (!src || path.resolve(src) === path.resolve(worktree)) continue;
    if ((await readMarker(src))?.hash === hash) return src;
    await fs.rm(path.join(dir, n), { force: true }); // retired, or reinstalled from another lockfile
  }
  return null;
}

/** Installs that failed in this process, by lockfile hash (see choose). */
const failedSeeds = new Map<string, { at: number; error: unknown }>();

/** This process's seed lookup or install under way, by lockfile hash: the slot to clone. */
const seedsInFlight = new Map<string, Promise<string | null>>();

/**
 * The slot to clone for `lock` (a seed, or the outcome of this process's first slot with that
 * lockfile), else this slot's own install (`install`, under the seed lock).
 */
export async function seedOrInstall<R extends { strategy: string }>(
  stateDir: string,
  worktree: string,
  lock: Lock,
  install: () => Promise<R>,
): Promise<{ src: string } | { r: R }> {
  const queued = Date.now();
  ensurePrivateDir(path.join(stateDir, 'deps'));
  // Each slot in the lock's queue would take it in turn, a few awaits each on an event loop
  // busy with the others (nine vite clones started 0.8 s apart): wait for the first instead.
  const ahead = seedsInFlight.get(lock.hash);
  const early = ahead && (await ahead.catch(() => null));
  if (
    early &&
    path.resolve(early) !== path.resolve(worktree) &&
    (await readMarker(early))?.hash === lock.hash
  )
    return { src: early };
  const section = withLock(
    path.join(stateDir, 'deps', `seed-${lock.hash.slice(0, 16)}`),
    async (): Promise<{ src: string } | { r: R }> => {
      const src = await seedSource(stateDir, lock.hash, worktree);
      if (src) return { src };
      // The install this slot waited for failed: the same lockfile fails the same way, so the
      // slots queued behind it do not each repeat it (a later provisioning tries again).
      const failed = failedSeeds.get(lock.hash);
      if (failed && failed.at >= queued) throw failed.error;
      let r: R;
      try {
        r = await install();
      } catch (e) {
        failedSeeds.set(lock.hash, { at: Date.now(), error: e });
        throw e;
      }
      await writeMarker(worktree, lock, r.strategy);
      await addSeed(stateDir, lock.hash, worktree);
      return { r };
    },
    { timeout: 60 * 60_000, stale: 60_000, purpose: `dependency install in ${worktree}` },
  );
  if (!seedsInFlight.has(lock.hash)) {
    const outcome = section.then((f) => ('r' in f ? worktree : f.src));
    seedsInFlight.set(lock.hash, outcome);
    void outcome.then(
      () => seedsInFlight.delete(lock.hash),
      () => seedsInFlight.delete(lock.hash),
    );
  }
  return section;
}
