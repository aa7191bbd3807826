/**
 * The seam between the pool's logic and where its shared state lives. Everything the pool
 * shares between processes goes through a LeaseStore: the slot registry, the queue tickets,
 * the fencing counter (`lastToken`) and the per-slot lease records ("lease files"). Nothing
 * else in the pool reads or writes the state files; `file-lease-store.ts` is the only backend
 * today (files under `.git/wtpool/`), and a Redis backend can implement the same contract.
 *
 * Contract (docs/pool.md "The lease store" says the same for backend authors):
 *
 * - **Registry** (`PoolState`: slots, queue, nextTicket, lastToken, identities, kept) is one
 *   document with a version. `read()` returns a whole committed version, never a mix of two.
 * - **`transact(fn)`** is an atomic read-modify-write of that document: `fn` gets a private
 *   copy of the newest version, changes it in place and returns a result; the change commits
 *   only if no other write committed in between (compare-and-set on the version), otherwise it
 *   is retried on the newer version or fails with `StoreConflictError`. So `fn` must be
 *   repeatable: it may run more than once, and may only change its draft and compute its
 *   result (no writes to files or to variables outside it). If `fn` throws, nothing is written.
 *   A Redis backend keeps the document under one key with its version and commits with a
 *   script that sets it only if the version is unchanged (WATCH/MULTI or an EVAL CAS script).
 * - **Fencing counter**: `lastToken` only grows; every grant takes `++lastToken` inside a
 *   transaction, so a token names exactly one lease for ever.
 * - **Lease records** (one per slot, `LeaseFile`): `createLease` is create-if-absent (exactly
 *   one concurrent creator wins); `replaceLease` overwrites a record only when the stored one
 *   carries the same token; `removeLease` removes only when the token matches; `moveAsideLease`
 *   keeps a foreign record for inspection instead of deleting it. In Redis: `SET NX`, and
 *   scripts that compare the token field before `SET`/`DEL`/`RENAME`.
 * - **`leaseToken(slot)`** is a synchronous read of the stored record's token (the state
 *   machine asks it inside a transaction to tell a claimed lease from an abandoned grant). A
 *   remote backend answers from the record fetched with the registry version being changed.
 * - **`watch(onChange)`** calls `onChange` soon after any committed registry write (waiters use
 *   it to wake early; they also poll, so a missed or spurious call is harmless). Redis: pub/sub.
 */
import type { LeaseFile, PoolState } from './types.js';

export interface LeaseStore {
  /** Where the store lives (for messages and `snapshot`): a directory, or a URL. */
  readonly location: string;
  /** The newest committed registry (no lock). */
  read(): Promise<PoolState>;
  /** The newest committed registry with its version. */
  readVersioned(): Promise<{ version: number; data: PoolState }>;
  /** Atomic read-modify-write of the registry; `fn` must be pure (see the contract above). */
  transact<R>(fn: (draft: PoolState) => R): Promise<R>;
  /** The stored lease record of a slot, or undefined. */
  readLease(slot: string): Promise<LeaseFile | undefined>;
  /** The token of the stored lease record of a slot, or null (synchronous, see contract). */
  leaseToken(slot: string): number | null;
  /**
   * How many leases this host may hold in the transaction running now (a fleet's PostgreSQL
   * connection budget: docs/fleet.md); absent or Infinity: no limit. Synchronous, like leaseToken.
   */
  maxLeases?(): number;
  /** The connection budget and what other hosts' leases take of it, for messages; null: none. */
  connections?(): { budget: number; others: number } | null;
  /** Creates the lease record of a slot if it has none; false when one exists. */
  createLease(doc: LeaseFile): Promise<boolean>;
  /** Overwrites the lease record of `doc.slot` if the stored one has the same token. */
  replaceLease(doc: LeaseFile): Promise<boolean>;
  /** Removes the lease record of a slot if it carries `token` (any token when null). */
  removeLease(slot: string, token: number | null): Promise<void>;
  /** Moves a foreign lease record out of the way (kept for inspection). */
  moveAsideLease(slot: string, tag: string): Promise<void>;
  /** Every stored lease record, with the slot it is stored under (doctor). */
  listLeases(): Promise<{ slot: string; where: string; lease: LeaseFile | undefined }[]>;
  /** Calls onChange soon after registry writes; returns a function that stops watching. */
  watch(onChange: () => void): () => void;
}
