/**
 * The file backend of the LeaseStore (see lease-store.ts for the contract): the registry is a
 * JsonStore (`state.json`, version-checked commits under a file lock), lease records are
 * `leases/<slot>.json` made with an exclusive create. The only module that touches them.
 */
import { readFileSync, watch, promises as fs } from 'node:fs';
import path from 'node:path';
import { usageError } from '@wtpool/core';
import {
  createExclusive,
  ensurePrivateDir,
  JsonStore,
  readJsonFile,
  writeFileAtomic,
} from '@wtpool/lock';
import type { LeaseStore } from './lease-store.js';
import { initialState } from './state.js';
import type { LeaseFile, PoolState } from './types.js';

const SLOT_FILE = /^(wt-\d+)\.json$/;

export class FileLeaseStore implements LeaseStore {
  private readonly registry: JsonStore<PoolState>;
  private readonly leasesDir: string;

  constructor(readonly location: string) {
    this.registry = new JsonStore<PoolState>(path.join(location, 'state.json'), {
      initial: initialState,
      timeout: 120_000,
    });
    this.leasesDir = path.join(location, 'leases');
  }

  private leaseFile(slot: string): string {
    if (!/^wt-\d+$/.test(slot)) throw usageError(`invalid slot id ${JSON.stringify(slot)}`);
    return path.join(this.leasesDir, `${slot}.json`);
  }

  async read(): Promise<PoolState> {
    return { ...initialState(), ...(await this.registry.read()) };
  }

  async readVersioned(): Promise<{ version: number; data: PoolState }> {
    const v = await this.registry.readVersioned();
    return { version: v.version, data: { ...initialState(), ...v.data } };
  }

  transact<R>(fn: (draft: PoolState) => R): Promise<R> {
    return this.registry.update((d) => fn(Object.assign(d, { ...initialState(), ...d })));
  }

  readLease(slot: string): Promise<LeaseFile | undefined> {
    return readJsonFile<LeaseFile>(this.leaseFile(slot)).catch(() => undefined);
  }

  leaseToken(slot: string): number | null {
    try {
      const lf = JSON.parse(readFileSync(this.leaseFile(slot), 'utf8')) as LeaseFile;
      return typeof lf.token === 'number' ? lf.token : null;
    } catch {
      return null;
    }
  }

  async createLease(doc: LeaseFile): Promise<boolean> {
    ensurePrivateDir(this.leasesDir); // lease files name agents and tasks: owner only (D92)
    return createExclusive(this.leaseFile(doc.slot), doc);
  }

  async replaceLease(doc: LeaseFile): Promise<boolean> {
    if ((await this.readLease(doc.slot))?.token !== doc.token) return false;
    await writeFileAtomic(this.leaseFile(doc.slot), JSON.stringify(doc, null, 2) + '\n');
    return true;
  }

  async removeLease(slot: string, token: number | null): Promise<void> {
    if (token !== null && (await this.readLease(slot))?.token !== token) return;
    await fs.rm(this.leaseFile(slot), { force: true });
  }

  async moveAsideLease(slot: string, tag: string): Promise<void> {
    const file = this.leaseFile(slot);
    await fs.rename(file, `${file}.stale-${tag}-${Date.now()}`).catch(() => {});
  }

  async listLeases(): Promise<{ slot: string; where: string; lease: LeaseFile | undefined }[]> {
    const names = await fs.readdir(this.leasesDir).catch(() => [] as string[]);
    const out = [];
    for (const name of names) {
      const m = SLOT_FILE.exec(name);
      if (!m) continue;
      out.push({
        slot: m[1]!,
        where: path.join(this.leasesDir, name),
        lease: await this.readLease(m[1]!),
      });
    }
    return out;
  }

  watch(onChange: () => void): () => void {
    try {
      const w = watch(this.location, (_ev, name) => {
        if (name === 'state.json') onChange();
      });
      w.on('error', () => {});
      return () => w.close();
    } catch {
      return () => {}; // waiters poll anyway
    }
  }
}
