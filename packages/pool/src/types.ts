/**
 * The pool's on-disk shapes. `state.json` (a JsonStore) holds a PoolState; `leases/<slot>.json`
 * holds a LeaseFile; `events.jsonl` holds one PoolEvent per line. docs/pool.md documents them
 * for the monitor and other readers.
 */

export type SlotState = 'provisioning' | 'ready' | 'leased' | 'releasing' | 'broken' | 'retiring';

/** A process on a host, identified by pid plus its start time (so a reused pid is not mistaken for it). */
export interface ProcRef {
  pid: number;
  /** /proc/<pid>/stat field 22 (clock ticks since boot); null when unknown (not Linux). */
  start: number | null;
  host: string;
}

export interface Lease {
  /** The slot this lease is on. */
  slot: string;
  agent: string;
  task: string;
  /** Slug of the task used in the branch name. */
  slug: string;
  branch: string;
  priority: number;
  /** Fencing token: the registry version that granted this lease; never goes backwards. */
  token: number;
  acquiredAt: string;
  heartbeatAt: string;
  ttlMs: number;
  expiresAt: string;
  host: string;
  /** The process whose death ends the lease at once (`--holder-pid`), when given. */
  holder: ProcRef | null;
  /**
   * The process finishing the grant (creating the lease file, switching the branch). A lease
   * whose lease file does not exist yet and whose claimer died is abandoned.
   */
  claimer: ProcRef;
  identity: string | null;
  /** The queue ticket this lease was granted to (null for an immediate grant). */
  ticket: number | null;
  /** When the acquire started (to report waitedMs). */
  requestedAt: string;
  /**
   * Why this lease ended although its record stays (the fleet's Redis lost its state, so the
   * lease cannot be proven still the holder's): its holder is refused (exit 5) and the next
   * sweep reclaims the slot, rescuing its work (docs/fleet.md).
   */
  ended?: string;
}

export interface SlotRecord {
  id: string;
  n: number;
  state: SlotState;
  path: string;
  /** The lease branch checked out (leased), or null (ready slots sit detached at the base). */
  branch: string | null;
  lease: Lease | null;
  createdAt: string;
  /** Since when the slot is ready (for idle shrinking). */
  readyAt: string | null;
  /** The process doing slow work on the slot (provisioning, releasing, retiring). */
  owner: ProcRef | null;
  /** Why the slot is broken, or what the last error was. */
  error: string | null;
  /** Stable code of that error (e.g. ERR_SERVICE_UNAVAILABLE), when it had one. */
  errorCode?: string | null;
  /** Exit code of that error, when known (3: a configuration error, which waiting does not heal). */
  errorExit?: number | null;
  /**
   * Consecutive failures (broken) since the slot was last ready. A slot re-provisioned with
   * failures > 0 has its services reset first (its last release may not have completed).
   */
  failures?: number;
  /** A broken slot is retried by an acquire that finds nothing ready, not before this time. */
  retryAt?: string | null;
}

export interface Ticket {
  id: number;
  agent: string;
  task: string;
  slug: string;
  priority: number;
  enqueuedAt: string;
  /** The waiting process: a dead waiter's ticket is dropped. */
  waiter: ProcRef;
  holder: ProcRef | null;
  ttlMs: number;
  identity: string | null;
}

export interface KeptBranch {
  branch: string;
  slot: string;
  agent: string;
  task: string;
  token: number;
  releasedAt: string;
}

export interface PoolState {
  slots: Record<string, SlotRecord>;
  queue: Ticket[];
  nextTicket: number;
  /** Last fencing token handed out; every grant takes the next one. */
  lastToken: number;
  /** identity → slot it used last. */
  identities: Record<string, string>;
  /** Branches released leases kept for integration (newest last, bounded). */
  kept: KeptBranch[];
}

/** `leases/<slot>.json`: made with an exclusive create; release and heartbeat check it. */
export interface LeaseFile {
  slot: string;
  agent: string;
  task: string;
  branch: string;
  token: number;
  acquiredAt: string;
  host: string;
  holderPid: number | null;
}

export type EventType =
  | 'acquire'
  | 'release'
  | 'grow'
  | 'shrink'
  | 'reclaim'
  | 'rescue'
  | 'provision'
  | 'enqueue'
  | 'dequeue'
  | 'heartbeat'
  | 'band-grow'
  | 'band-shrink'
  | 'error';

export interface PoolEvent {
  ts: string;
  type: EventType | string;
  pid: number;
  slot?: string;
  [key: string]: unknown;
}

/** The `acquire --json` object (CLI.md). */
export interface AcquireResult {
  slot: string;
  path: string;
  branch: string;
  agent: string;
  task: string;
  priority: number;
  token: number;
  acquiredAt: string;
  expiresAt: string;
  waitedMs: number;
  envFile: string;
  env: Record<string, string>;
}

/** What a caller of `lease()` may pass to follow and stop its wait (LeaseOptions). */
export interface WaitOptions {
  /** Aborting it stops the wait; the acquire leaves the queue and rejects with ERR_ABORTED. */
  signal?: AbortSignal | undefined;
  /** Told where the ticket stands when that changes, and every 10 s while it waits. */
  onQueue?:
    | ((p: { position: number; waiting: number; ticket: number; waitedMs: number }) => void)
    | undefined;
}

export interface LeaseOptions extends WaitOptions {
  agent: string;
  task: string;
  /** 0 (most urgent) … 4. Default 2. */
  priority?: number;
  /** Block in the queue when nothing is free (default true). */
  wait?: boolean;
  timeoutMs?: number;
  ttlMs?: number;
  holderPid?: number;
  identity?: string;
}

export interface ReleaseOptions {
  slot: string;
  agent: string;
  force?: boolean;
  /** The lease's fencing token: when given, a stale one is refused (exit 5) whatever the agent. */
  token?: number | null;
  /** Remove nested repositories that could not be saved (never without this flag). */
  discardNested?: boolean;
}

export interface ReleaseResult {
  slot: string;
  agent: string;
  token: number;
  branch: string;
  /** The branch had commits not in the base and was kept for integration. */
  kept: boolean;
  /** Where uncommitted work was saved (only with force on a dirty worktree). */
  rescueRef: string | null;
  /** Nested repositories saved (their refs under `<rescueRef>-nested/`). */
  nested?: { path: string; ref: string }[];
  /** Ignored files not saved (over pool.rescueMaxBytes): left on disk in the slot. */
  unsaved?: string[];
  /** Nested repositories removed unsaved (--discard-nested). */
  discarded?: string[];
  /** The services could not be reset: queued (the slot is not handed out before). */
  pendingReset?: string | null;
  /** This lease was already released (by a parallel or earlier release): this is that result. */
  alreadyReleased?: boolean;
  /** When, for an already released lease. */
  releasedAt?: string;
}

export interface StatusLease {
  agent: string;
  task: string;
  priority: number;
  token: number;
  acquiredAt: string;
  heartbeatAt: string;
  expiresAt: string;
  holderPid?: number | null;
  identity?: string | null;
  /** Why the lease is over (expired, holder-dead, abandoned), or null; status shows it, the next mutating command or `doctor --fix` reclaims it. */
  over?: string | null;
}

/** `status --json` (CLI.md). */
export interface PoolStatus {
  pool: {
    min: number;
    max: number;
    size: number;
    ready: number;
    leased: number;
    provisioning: number;
    broken: number;
    waiters: number;
    releasing?: number;
    retiring?: number;
    /** Why the pool does not create slots now (state.ts growthStopped), or null. */
    growthStopped?: { reason: string; fix: string } | null;
  };
  slots: {
    id: string;
    state: SlotState;
    path: string;
    branch: string | null;
    lease: StatusLease | null;
    error?: string | null;
  }[];
  queue: { agent: string; task: string; priority: number; enqueuedAt: string; pid?: number }[];
  capacity: unknown;
  /** The merge queue's worktrees (protected: never a leak, never pruned). */
  integration?: { path: string; branch: string | null; head: string | null }[];
}
